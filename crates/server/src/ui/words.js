// The demo page's own words, in English, German and French: the one file a
// translator edits. What the page says about an operation (its labels,
// timeline, outcome, notifications) is herald's, in the operation's
// language; these are the words around them.
//
// The language is the first of the browser's (navigator.languages) written
// here, else English; <html lang> says which, and times are formatted by
// Intl in the browser's own locale for it (de-DE, de-CH, en-GB…).
//
// One entry per key, in each language. `{name}` is a blank the page fills
// (a label, a time, a number): keep the blanks as they are. A key missing
// from a language would show the English; the German page's browser test
// (crates/server/tests/ui/german.spec.mjs) fails while any is, or while a
// translation names other blanks than the English.

const WORDS = {
  en: {
    // The page's frame (index.html)
    'title': 'herald demo',
    'tagline': 'demo: sagas, told honestly',
    'you-are': 'You are',
    'you-are-hint': 'Your orders and account requests are made as this person, and the bell shows their notifications.',
    'notifications': 'Notifications',
    'mark-all-read': 'Mark all read',
    'close': 'Close',
    'close-notifications': 'Close notifications',
    'no-notifications': 'No notifications yet. Place an order or delete an account.',
    'show-that-request': 'Show that request',
    'dismiss': 'Dismiss',
    'dismiss-message': 'Dismiss this message',
    'shop': 'Shop',
    'ordering-as': 'Ordering as',
    'name-at-top': '(the name at the top).',
    'items-legend': 'Items (how many of each)',
    'item.tea': 'Tea',
    'item.mug': 'Mug',
    'item.kettle': 'Kettle',
    'card-number': 'Card number',
    'good-card': 'Good card',
    'declined-card': 'Declined card',
    'card-hint': 'Test cards only: nothing real is charged.',
    'place-order': 'Place order',
    'account': 'Account',
    'account-of': 'The account of',
    'email': 'Email',
    'delete-account': 'Delete my account',
    'recent': 'Recent operations',
    'nothing-yet': 'Nothing yet.',
    'demo-emails': 'Demo emails',
    'mail-hint': 'The emails herald sent. They went to a pretend mail server inside this demo and never left this machine.',
    'no-emails': 'No emails yet. Deleting an account ends with a farewell email.',
    'what-is-happening': 'What is happening',
    'cancel': 'Cancel',
    'op-placeholder': 'Place an order or delete an account, and watch each step here as it happens.',
    'steps': 'Steps',
    'log-heading': 'What happened, in order',

    // The connection to herald
    'conn.idle': 'idle',
    'conn.live': 'live',
    'conn.reconnecting': 'reconnecting…',

    // The forms, and what the page says when something is missing
    'request-received': '{label}: request received.',
    'need-name': 'Please enter your name at the top ("You are").',
    'need-item': 'Please choose at least one item.',
    'need-card': 'Please enter a card number, or pick one of the test cards.',
    'need-email': 'Please enter the email.',
    'nobody-yet': '(nobody yet)',
    'not-found': 'Not found',
    'no-such-operation': 'There is no operation {id} on this server.',
    'cancel-reason': 'cancelled from the demo page',

    // herald's refusals, by their problem type; any other shows herald's own detail
    'problem.unreachable': 'Could not reach the server. Check the connection and try again.',
    'problem.concurrency-conflict': 'A request like this one is already in progress.',
    'problem.rate-limited': 'Too many requests just now. Please try again in a moment.',
    'problem.unavailable': 'herald cannot take requests just now. Please try again shortly.',
    'problem.store-unavailable': 'herald cannot take requests just now. Please try again shortly.',
    'problem.conflict': 'That is no longer possible: the request has moved on.',
    'problem.not-found': 'That is not there, or no longer.',
    'problem.other': '{detail}',

    // An operation's status (its badge)
    'status.accepted': 'Received',
    'status.awaiting_decision': 'Waiting for your choice',
    'status.running': 'In progress',
    'status.compensating': 'Undoing',
    'status.succeeded': 'Done',
    'status.failed': 'Did not go through',
    'status.cancelled': 'Cancelled',

    // The operation view
    'loading': 'Loading…',
    'meta.for': 'For {subject}',
    'meta.started': 'started {time}',
    'meta.finished': 'finished {time}',
    'at-the-same-time': 'At the same time',
    'waiting-for-choice': 'Waiting for your choice:',
    'ask-earlier': 'an earlier request is still in progress.',
    'if-no-choice': 'If you do not choose by {time}{countdown}, {default} (the default).',
    'default.keep': 'the earlier request is kept and this one will not run',
    'default.replace': 'this one replaces the earlier one, which is undone first',
    'choose': 'Choose…',
    'paused-title': 'Paused: {labels} did not work.',
    'paused-body': 'A person has been alerted and will pick it up; this page will update by itself.',
    'not-undone-title': 'Something could not be undone.',
    'not-undone-body': 'A person has been alerted and will follow up.',
    'queued': 'Waiting for your earlier request to finish.',
    'show-it': 'Show it',
    'field.email': 'email address',
    'erased-one': 'Your {fields} was erased',
    'erased-many': 'Your {fields} were erased',
    'erased-rest': 'from herald\'s records once the last email had gone out.',
    'being-undone': 'What was already done is being undone{why}.',
    'late': 'Taking longer than usual.',
    'late-was-expected': 'It was expected by {time}; it is still going; this page will update by itself.',
    'late-still-going': 'It is still going; this page will update by itself.',
    'by-recent': '(going by recent requests)',
    'expected-by': 'expected by {time}',
    'deadline': 'Deadline: {time}.',

    // A step, as a screen reader hears its state, and what is said under it
    'step.pending': 'Not started yet',
    'step.running': 'In progress',
    'step.retrying': 'Retrying',
    'step.waiting': 'Waiting',
    'step.succeeded': 'Done',
    'step.failed': 'Failed',
    'step.held': 'Paused',
    'step.skipped': 'Skipped',
    'step.compensating': 'Being undone',
    'step.compensated': 'Undone',
    'step.compensation_failed': 'Could not be undone',
    'attempt-of': 'Attempt {n} of {max}',
    'at-the-service': 'In progress at the service…',
    'attempt-failed': 'Attempt {n} of {max} failed: {error}.',
    'no-answer': 'no answer',
    'trying-again-at': 'Trying again at {time}{countdown}',
    'trying-again-soon': 'Trying again soon',
    'waiting-for-service': 'Waiting for the {service} service to take it; no attempt is used while it waits.',
    'did-not-work': 'It did not work.',
    'held-line': 'It did not work ({error}). Paused until a person looks at it; you do not need to do anything.',
    'not-needed': 'Not needed',
    'undoing-label': 'Undoing: {label}…',
    'undoing': 'Undoing…',
    'waiting-for-service-undo': 'Waiting for the {service} service to take it.',
    'undo-attempt-failed': 'Attempt {n} failed: {error}.',
    'undone-tag': 'Undone',
    'could-not-undo': 'Could not be undone — a person will follow up',
    'step-was-expected': 'It was expected by {time}.',
    'step-expected-by': 'Expected by {time}',

    // The basket and the page's own orders ("Recent operations")
    'your-order': 'Your order',
    'pending': 'Pending',
    'rolled-back': 'Rolled back',
    'not-placed': 'Not placed',
    'rolled-back-said': 'Your order was rolled back. {reason}',
    'not-placed-said': 'Your order was not placed: {reason}',
    'items-back': 'Your items are back in your basket.',
    'maybe-placed': 'Your order may or may not have gone through: {error}',
    'undone-item': '{label}: undone',
    'undone-item-how': '{label}: undone ({how})',
    'not-undone-item': '{label}: could not be undone ({reason})',

    // The choice when two requests collide (the dialog)
    'decide.title': 'Keep the earlier request, or replace it?',
    'decide.old': 'Already in progress',
    'decide.new': 'Your new request',
    'decide.keep': 'Keep the earlier one',
    'decide.keep-does': 'It goes on; your new request is cancelled before it does anything.',
    'decide.replace': 'Replace it with this one',
    'decide.replace-does': 'The earlier one is stopped and what it did is undone; then this one runs.',
    'decide.later': 'Decide later',
    'decide.ok': 'OK',
    'decide.earlier-still': 'An earlier request is still in progress.',
    'decide.not-started': 'Not started: it waits for your choice.',
    'decide.looking-up': 'Looking it up…',
    'decide.earlier-hidden': 'An earlier request of yours is still in progress. Its details are not shown here.',
    'decide.started': 'Started {time}',
    'decide.failed': 'That did not go through: {error}',
    'decide.time-ran-out': 'Time ran out',
    'decide.already': 'Already decided',
    'decide.no-longer': 'This request no longer waits for a choice.',
    'decide.no-choice-yet': 'No choice made yet. You can still choose from the request\'s page until time runs out.',
    'decide.chose-keep': 'You kept the earlier request; this one will not run.',
    'decide.chose-replace': 'You replaced the earlier request with this one; the earlier one is undone first, then this one runs.',
    'mini.pending': 'not started',
    'mini.running': 'in progress',
    'mini.retrying': 'trying again',
    'mini.waiting': 'waiting',
    'mini.held': 'paused',
    'mini.succeeded': 'done',
    'mini.failed': 'failed',
    'mini.skipped': 'not needed',
    'mini.compensating': 'being undone',
    'mini.compensated': 'undone',
    'mini.compensation_failed': 'could not be undone',

    // The bell
    'bell-unread': 'Notifications, {n} unread',
    'bell-none-unread': 'Notifications, none unread',
    'unread': 'Unread:',
    'new-notice': 'New: {title} — {body}',
    'level.warning': 'Taking longer',
    'level.error': 'Problem',
    'needs-attention': 'Needs attention',
    'all-read': 'All notifications marked read.',

    // "Demo emails"
    'no-subject': '(no subject)',
    'mail-to': 'To {to}',
    'older-mails': 'And {n} older.',
  },

  de: {
    'title': 'herald-Demo',
    'tagline': 'Demo: Sagas, ehrlich erzählt',
    'you-are': 'Sie sind',
    'you-are-hint': 'Ihre Bestellungen und Kontoanfragen laufen unter diesem Namen, und die Glocke zeigt dessen Benachrichtigungen.',
    'notifications': 'Benachrichtigungen',
    'mark-all-read': 'Alle als gelesen markieren',
    'close': 'Schließen',
    'close-notifications': 'Benachrichtigungen schließen',
    'no-notifications': 'Noch keine Benachrichtigungen. Geben Sie eine Bestellung auf oder löschen Sie ein Konto.',
    'show-that-request': 'Diese Anfrage zeigen',
    'dismiss': 'Ausblenden',
    'dismiss-message': 'Diese Meldung ausblenden',
    'shop': 'Shop',
    'ordering-as': 'Sie bestellen als',
    'name-at-top': '(der Name ganz oben).',
    'items-legend': 'Artikel (wie viele von jedem)',
    'item.tea': 'Tee',
    'item.mug': 'Becher',
    'item.kettle': 'Wasserkocher',
    'card-number': 'Kartennummer',
    'good-card': 'Gültige Karte',
    'declined-card': 'Abgelehnte Karte',
    'card-hint': 'Nur Testkarten: Es wird nichts wirklich abgebucht.',
    'place-order': 'Bestellung aufgeben',
    'account': 'Konto',
    'account-of': 'Das Konto von',
    'email': 'E-Mail',
    'delete-account': 'Mein Konto löschen',
    'recent': 'Letzte Vorgänge',
    'nothing-yet': 'Noch nichts.',
    'demo-emails': 'Demo-E-Mails',
    'mail-hint': 'Die E-Mails, die herald verschickt hat. Sie gingen an einen simulierten Mailserver in dieser Demo und haben diesen Rechner nie verlassen.',
    'no-emails': 'Noch keine E-Mails. Das Löschen eines Kontos endet mit einer Abschieds-E-Mail.',
    'what-is-happening': 'Was gerade passiert',
    'cancel': 'Abbrechen',
    'op-placeholder': 'Geben Sie eine Bestellung auf oder löschen Sie ein Konto, und verfolgen Sie hier jeden Schritt, während er geschieht.',
    'steps': 'Schritte',
    'log-heading': 'Was geschah, der Reihe nach',

    'conn.idle': 'nicht verbunden',
    'conn.live': 'verbunden',
    'conn.reconnecting': 'verbindet neu…',

    'request-received': '{label}: Anfrage erhalten.',
    'need-name': 'Bitte geben Sie oben Ihren Namen ein („Sie sind“).',
    'need-item': 'Bitte wählen Sie mindestens einen Artikel.',
    'need-card': 'Bitte geben Sie eine Kartennummer ein oder wählen Sie eine der Testkarten.',
    'need-email': 'Bitte geben Sie die E-Mail-Adresse ein.',
    'nobody-yet': '(noch niemand)',
    'not-found': 'Nicht gefunden',
    'no-such-operation': 'Auf diesem Server gibt es keinen Vorgang {id}.',
    'cancel-reason': 'auf der Demo-Seite abgebrochen',

    'problem.unreachable': 'Der Server ist nicht erreichbar. Prüfen Sie die Verbindung und versuchen Sie es erneut.',
    'problem.concurrency-conflict': 'Eine solche Anfrage läuft bereits.',
    'problem.rate-limited': 'Gerade kommen zu viele Anfragen. Bitte versuchen Sie es gleich noch einmal.',
    'problem.unavailable': 'herald nimmt gerade keine Anfragen an. Bitte versuchen Sie es gleich noch einmal.',
    'problem.store-unavailable': 'herald nimmt gerade keine Anfragen an. Bitte versuchen Sie es gleich noch einmal.',
    'problem.conflict': 'Das ist nicht mehr möglich: Die Anfrage ist schon weiter.',
    'problem.not-found': 'Das gibt es nicht (mehr).',
    'problem.other': 'Das hat nicht geklappt. Der Server meldet: „{detail}“',

    'status.accepted': 'Eingegangen',
    'status.awaiting_decision': 'Wartet auf Ihre Wahl',
    'status.running': 'In Bearbeitung',
    'status.compensating': 'Wird rückgängig gemacht',
    'status.succeeded': 'Erledigt',
    'status.failed': 'Nicht zustande gekommen',
    'status.cancelled': 'Abgebrochen',

    'loading': 'Wird geladen…',
    'meta.for': 'Für {subject}',
    'meta.started': 'begonnen um {time}',
    'meta.finished': 'beendet um {time}',
    'at-the-same-time': 'Gleichzeitig',
    'waiting-for-choice': 'Wartet auf Ihre Wahl:',
    'ask-earlier': 'Eine frühere Anfrage läuft noch.',
    'if-no-choice': 'Wenn Sie nicht bis {time}{countdown} wählen, {default} (die Voreinstellung).',
    'default.keep': 'bleibt die frühere Anfrage bestehen und diese wird nicht ausgeführt',
    'default.replace': 'ersetzt diese Anfrage die frühere, die zuerst rückgängig gemacht wird',
    'choose': 'Wählen…',
    'paused-title': 'Angehalten: {labels} hat nicht geklappt.',
    'paused-body': 'Jemand wurde benachrichtigt und kümmert sich darum; diese Seite aktualisiert sich von selbst.',
    'not-undone-title': 'Etwas konnte nicht rückgängig gemacht werden.',
    'not-undone-body': 'Jemand wurde benachrichtigt und kümmert sich darum.',
    'queued': 'Wartet, bis Ihre frühere Anfrage abgeschlossen ist.',
    'show-it': 'Anzeigen',
    'field.email': 'E-Mail-Adresse',
    'erased-one': 'Ihre {fields} wurde gelöscht',
    'erased-many': 'Ihre Angaben ({fields}) wurden gelöscht',
    'erased-rest': '– aus den Unterlagen von herald, sobald die letzte E-Mail verschickt war.',
    'being-undone': 'Bereits Erledigtes wird rückgängig gemacht{why}.',
    'late': 'Dauert länger als üblich.',
    'late-was-expected': 'Erwartet war es bis {time}; es läuft noch, und diese Seite aktualisiert sich von selbst.',
    'late-still-going': 'Es läuft noch, und diese Seite aktualisiert sich von selbst.',
    'by-recent': '(nach den letzten Anfragen)',
    'expected-by': 'erwartet bis {time}',
    'deadline': 'Frist: {time}.',

    'step.pending': 'Noch nicht begonnen',
    'step.running': 'In Bearbeitung',
    'step.retrying': 'Neuer Versuch',
    'step.waiting': 'Wartet',
    'step.succeeded': 'Erledigt',
    'step.failed': 'Fehlgeschlagen',
    'step.held': 'Angehalten',
    'step.skipped': 'Übersprungen',
    'step.compensating': 'Wird rückgängig gemacht',
    'step.compensated': 'Rückgängig gemacht',
    'step.compensation_failed': 'Konnte nicht rückgängig gemacht werden',
    'attempt-of': 'Versuch {n} von {max}',
    'at-the-service': 'Beim Dienst in Bearbeitung…',
    'attempt-failed': 'Versuch {n} von {max} ist fehlgeschlagen: {error}.',
    'no-answer': 'keine Antwort',
    'trying-again-at': 'Neuer Versuch um {time}{countdown}',
    'trying-again-soon': 'Neuer Versuch in Kürze',
    'waiting-for-service': 'Wartet darauf, dass der Dienst {service} es annimmt; solange wird kein Versuch verbraucht.',
    'did-not-work': 'Das hat nicht geklappt.',
    'held-line': 'Das hat nicht geklappt ({error}). Angehalten, bis sich jemand darum kümmert; Sie müssen nichts tun.',
    'not-needed': 'Nicht nötig',
    'undoing-label': 'Wird rückgängig gemacht: {label}…',
    'undoing': 'Wird rückgängig gemacht…',
    'waiting-for-service-undo': 'Wartet darauf, dass der Dienst {service} es annimmt.',
    'undo-attempt-failed': 'Versuch {n} ist fehlgeschlagen: {error}.',
    'undone-tag': 'Rückgängig gemacht',
    'could-not-undo': 'Konnte nicht rückgängig gemacht werden – jemand kümmert sich darum',
    'step-was-expected': 'Erwartet war es bis {time}.',
    'step-expected-by': 'Erwartet bis {time}',

    'your-order': 'Ihre Bestellung',
    'pending': 'Ausstehend',
    'rolled-back': 'Zurückgenommen',
    'not-placed': 'Nicht aufgegeben',
    'rolled-back-said': 'Ihre Bestellung wurde zurückgenommen. {reason}',
    'not-placed-said': 'Ihre Bestellung wurde nicht aufgegeben: {reason}',
    'items-back': 'Ihre Artikel liegen wieder in Ihrem Warenkorb.',
    'maybe-placed': 'Ob Ihre Bestellung eingegangen ist, lässt sich nicht sagen: {error}',
    'undone-item': '{label}: rückgängig gemacht',
    'undone-item-how': '{label}: rückgängig gemacht ({how})',
    'not-undone-item': '{label}: konnte nicht rückgängig gemacht werden ({reason})',

    'decide.title': 'Die frühere Anfrage behalten oder ersetzen?',
    'decide.old': 'Läuft bereits',
    'decide.new': 'Ihre neue Anfrage',
    'decide.keep': 'Die frühere behalten',
    'decide.keep-does': 'Sie läuft weiter; Ihre neue Anfrage wird abgebrochen, bevor sie etwas tut.',
    'decide.replace': 'Durch diese ersetzen',
    'decide.replace-does': 'Die frühere wird angehalten und rückgängig gemacht, was sie getan hat; dann läuft diese.',
    'decide.later': 'Später entscheiden',
    'decide.ok': 'OK',
    'decide.earlier-still': 'Eine frühere Anfrage läuft noch.',
    'decide.not-started': 'Nicht begonnen: Sie wartet auf Ihre Wahl.',
    'decide.looking-up': 'Wird nachgesehen…',
    'decide.earlier-hidden': 'Eine frühere Anfrage von Ihnen läuft noch. Ihre Einzelheiten werden hier nicht gezeigt.',
    'decide.started': 'Begonnen um {time}',
    'decide.failed': 'Das hat nicht geklappt: {error}',
    'decide.time-ran-out': 'Die Zeit ist abgelaufen',
    'decide.already': 'Bereits entschieden',
    'decide.no-longer': 'Diese Anfrage wartet nicht mehr auf eine Wahl.',
    'decide.no-choice-yet': 'Noch keine Wahl getroffen. Sie können auf der Seite der Anfrage noch wählen, bis die Zeit abgelaufen ist.',
    'decide.chose-keep': 'Sie haben die frühere Anfrage behalten; diese wird nicht ausgeführt.',
    'decide.chose-replace': 'Sie haben die frühere Anfrage durch diese ersetzt; die frühere wird zuerst rückgängig gemacht, dann läuft diese.',
    'mini.pending': 'nicht begonnen',
    'mini.running': 'in Bearbeitung',
    'mini.retrying': 'neuer Versuch',
    'mini.waiting': 'wartet',
    'mini.held': 'angehalten',
    'mini.succeeded': 'erledigt',
    'mini.failed': 'fehlgeschlagen',
    'mini.skipped': 'nicht nötig',
    'mini.compensating': 'wird rückgängig gemacht',
    'mini.compensated': 'rückgängig gemacht',
    'mini.compensation_failed': 'konnte nicht rückgängig gemacht werden',

    'bell-unread': 'Benachrichtigungen, {n} ungelesen',
    'bell-none-unread': 'Benachrichtigungen, keine ungelesen',
    'unread': 'Ungelesen:',
    'new-notice': 'Neu: {title} – {body}',
    'level.warning': 'Dauert länger',
    'level.error': 'Problem',
    'needs-attention': 'Braucht Aufmerksamkeit',
    'all-read': 'Alle Benachrichtigungen als gelesen markiert.',

    'no-subject': '(kein Betreff)',
    'mail-to': 'An {to}',
    'older-mails': 'Und {n} ältere.',
  },

  fr: {
    'title': 'démo herald',
    'tagline': 'démo : des sagas racontées honnêtement',
    'you-are': 'Vous êtes',
    'you-are-hint': 'Vos commandes et demandes de compte sont faites au nom de cette personne, et la cloche affiche ses notifications.',
    'notifications': 'Notifications',
    'mark-all-read': 'Tout marquer comme lu',
    'close': 'Fermer',
    'close-notifications': 'Fermer les notifications',
    'no-notifications': 'Aucune notification pour l\'instant. Passez une commande ou supprimez un compte.',
    'show-that-request': 'Afficher cette demande',
    'dismiss': 'Masquer',
    'dismiss-message': 'Masquer ce message',
    'shop': 'Boutique',
    'ordering-as': 'Vous commandez en tant que',
    'name-at-top': '(le nom tout en haut).',
    'items-legend': 'Articles (combien de chacun)',
    'item.tea': 'Thé',
    'item.mug': 'Tasse',
    'item.kettle': 'Bouilloire',
    'card-number': 'Numéro de carte',
    'good-card': 'Carte valide',
    'declined-card': 'Carte refusée',
    'card-hint': 'Cartes de test uniquement : rien n\'est réellement débité.',
    'place-order': 'Passer la commande',
    'account': 'Compte',
    'account-of': 'Le compte de',
    'email': 'E-mail',
    'delete-account': 'Supprimer mon compte',
    'recent': 'Opérations récentes',
    'nothing-yet': 'Rien pour l\'instant.',
    'demo-emails': 'E-mails de la démo',
    'mail-hint': 'Les e-mails envoyés par herald. Ils sont allés à un faux serveur de messagerie dans cette démo et n\'ont jamais quitté cette machine.',
    'no-emails': 'Aucun e-mail pour l\'instant. La suppression d\'un compte se termine par un e-mail d\'adieu.',
    'what-is-happening': 'Ce qui se passe',
    'cancel': 'Annuler',
    'op-placeholder': 'Passez une commande ou supprimez un compte, et suivez ici chaque étape au moment où elle se déroule.',
    'steps': 'Étapes',
    'log-heading': 'Ce qui s\'est passé, dans l\'ordre',

    'conn.idle': 'déconnecté',
    'conn.live': 'en direct',
    'conn.reconnecting': 'reconnexion…',

    'request-received': '{label} : demande reçue.',
    'need-name': 'Veuillez saisir votre nom tout en haut (« Vous êtes »).',
    'need-item': 'Veuillez choisir au moins un article.',
    'need-card': 'Veuillez saisir un numéro de carte, ou choisir l\'une des cartes de test.',
    'need-email': 'Veuillez saisir l\'adresse e-mail.',
    'nobody-yet': '(personne pour l\'instant)',
    'not-found': 'Introuvable',
    'no-such-operation': 'Il n\'y a pas d\'opération {id} sur ce serveur.',
    'cancel-reason': 'annulé depuis la page de démo',

    'problem.unreachable': 'Impossible de joindre le serveur. Vérifiez la connexion et réessayez.',
    'problem.concurrency-conflict': 'Une demande de ce type est déjà en cours.',
    'problem.rate-limited': 'Trop de demandes en ce moment. Veuillez réessayer dans un instant.',
    'problem.unavailable': 'herald n\'accepte pas de demandes pour le moment. Veuillez réessayer sous peu.',
    'problem.store-unavailable': 'herald n\'accepte pas de demandes pour le moment. Veuillez réessayer sous peu.',
    'problem.conflict': 'Ce n\'est plus possible : la demande a déjà avancé.',
    'problem.not-found': 'Cela n\'existe pas (ou plus).',
    'problem.other': 'Cela n\'a pas abouti. Le serveur indique : « {detail} »',

    'status.accepted': 'Reçue',
    'status.awaiting_decision': 'En attente de votre choix',
    'status.running': 'En cours',
    'status.compensating': 'Annulation en cours',
    'status.succeeded': 'Terminée',
    'status.failed': 'N\'a pas abouti',
    'status.cancelled': 'Annulée',

    'loading': 'Chargement…',
    'meta.for': 'Pour {subject}',
    'meta.started': 'commencée à {time}',
    'meta.finished': 'terminée à {time}',
    'at-the-same-time': 'En même temps',
    'waiting-for-choice': 'En attente de votre choix :',
    'ask-earlier': 'une demande précédente est encore en cours.',
    'if-no-choice': 'Si vous ne choisissez pas avant {time}{countdown}, {default} (le choix par défaut).',
    'default.keep': 'la demande précédente est conservée et celle-ci ne sera pas exécutée',
    'default.replace': 'celle-ci remplace la précédente, qui est d\'abord annulée',
    'choose': 'Choisir…',
    'paused-title': 'En pause : {labels} n\'a pas abouti.',
    'paused-body': 'Une personne a été prévenue et va s\'en occuper ; cette page se met à jour toute seule.',
    'not-undone-title': 'Quelque chose n\'a pas pu être annulé.',
    'not-undone-body': 'Une personne a été prévenue et assurera le suivi.',
    'queued': 'En attente de la fin de votre demande précédente.',
    'show-it': 'L\'afficher',
    'field.email': 'adresse e-mail',
    'erased-one': 'Votre {fields} a été effacée',
    'erased-many': 'Vos données ({fields}) ont été effacées',
    'erased-rest': 'des registres de herald une fois le dernier e-mail parti.',
    'being-undone': 'Ce qui a déjà été fait est en cours d\'annulation{why}.',
    'late': 'Cela prend plus de temps que d\'habitude.',
    'late-was-expected': 'C\'était prévu pour {time} ; c\'est toujours en cours, et cette page se met à jour toute seule.',
    'late-still-going': 'C\'est toujours en cours, et cette page se met à jour toute seule.',
    'by-recent': '(d\'après les demandes récentes)',
    'expected-by': 'prévu pour {time}',
    'deadline': 'Échéance : {time}.',

    'step.pending': 'Pas encore commencé',
    'step.running': 'En cours',
    'step.retrying': 'Nouvel essai',
    'step.waiting': 'En attente',
    'step.succeeded': 'Terminé',
    'step.failed': 'Échoué',
    'step.held': 'En pause',
    'step.skipped': 'Ignoré',
    'step.compensating': 'En cours d\'annulation',
    'step.compensated': 'Annulé',
    'step.compensation_failed': 'N\'a pas pu être annulé',
    'attempt-of': 'Tentative {n} sur {max}',
    'at-the-service': 'En cours auprès du service…',
    'attempt-failed': 'La tentative {n} sur {max} a échoué : {error}.',
    'no-answer': 'pas de réponse',
    'trying-again-at': 'Nouvel essai à {time}{countdown}',
    'trying-again-soon': 'Nouvel essai bientôt',
    'waiting-for-service': 'En attente que le service {service} le prenne en charge ; aucune tentative n\'est utilisée pendant l\'attente.',
    'did-not-work': 'Cela n\'a pas abouti.',
    'held-line': 'Cela n\'a pas abouti ({error}). En pause jusqu\'à ce qu\'une personne s\'en occupe ; vous n\'avez rien à faire.',
    'not-needed': 'Pas nécessaire',
    'undoing-label': 'Annulation : {label}…',
    'undoing': 'Annulation…',
    'waiting-for-service-undo': 'En attente que le service {service} le prenne en charge.',
    'undo-attempt-failed': 'La tentative {n} a échoué : {error}.',
    'undone-tag': 'Annulé',
    'could-not-undo': 'N\'a pas pu être annulé — une personne assurera le suivi',
    'step-was-expected': 'C\'était prévu pour {time}.',
    'step-expected-by': 'Prévu pour {time}',

    'your-order': 'Votre commande',
    'pending': 'En attente',
    'rolled-back': 'Annulée',
    'not-placed': 'Non passée',
    'rolled-back-said': 'Votre commande a été annulée. {reason}',
    'not-placed-said': 'Votre commande n\'a pas été passée : {reason}',
    'items-back': 'Vos articles sont de retour dans votre panier.',
    'maybe-placed': 'Impossible de savoir si votre commande est passée : {error}',
    'undone-item': '{label} : annulé',
    'undone-item-how': '{label} : annulé ({how})',
    'not-undone-item': '{label} : n\'a pas pu être annulé ({reason})',

    'decide.title': 'Garder la demande précédente, ou la remplacer ?',
    'decide.old': 'Déjà en cours',
    'decide.new': 'Votre nouvelle demande',
    'decide.keep': 'Garder la précédente',
    'decide.keep-does': 'Elle continue ; votre nouvelle demande est annulée avant d\'avoir rien fait.',
    'decide.replace': 'La remplacer par celle-ci',
    'decide.replace-does': 'La précédente est arrêtée et ce qu\'elle a fait est annulé ; puis celle-ci s\'exécute.',
    'decide.later': 'Décider plus tard',
    'decide.ok': 'OK',
    'decide.earlier-still': 'Une demande précédente est encore en cours.',
    'decide.not-started': 'Pas commencée : elle attend votre choix.',
    'decide.looking-up': 'Recherche en cours…',
    'decide.earlier-hidden': 'Une de vos demandes précédentes est encore en cours. Ses détails ne sont pas affichés ici.',
    'decide.started': 'Commencée à {time}',
    'decide.failed': 'Cela n\'a pas abouti : {error}',
    'decide.time-ran-out': 'Le temps est écoulé',
    'decide.already': 'Déjà décidé',
    'decide.no-longer': 'Cette demande n\'attend plus de choix.',
    'decide.no-choice-yet': 'Aucun choix pour l\'instant. Vous pouvez encore choisir depuis la page de la demande jusqu\'à la fin du délai.',
    'decide.chose-keep': 'Vous avez gardé la demande précédente ; celle-ci ne sera pas exécutée.',
    'decide.chose-replace': 'Vous avez remplacé la demande précédente par celle-ci ; la précédente est d\'abord annulée, puis celle-ci s\'exécute.',
    'mini.pending': 'pas commencé',
    'mini.running': 'en cours',
    'mini.retrying': 'nouvel essai',
    'mini.waiting': 'en attente',
    'mini.held': 'en pause',
    'mini.succeeded': 'terminé',
    'mini.failed': 'échoué',
    'mini.skipped': 'pas nécessaire',
    'mini.compensating': 'en cours d\'annulation',
    'mini.compensated': 'annulé',
    'mini.compensation_failed': 'n\'a pas pu être annulé',

    'bell-unread': 'Notifications, {n} non lues',
    'bell-none-unread': 'Notifications, aucune non lue',
    'unread': 'Non lue :',
    'new-notice': 'Nouveau : {title} — {body}',
    'level.warning': 'Plus long que prévu',
    'level.error': 'Problème',
    'needs-attention': 'Intervention nécessaire',
    'all-read': 'Toutes les notifications sont marquées comme lues.',

    'no-subject': '(sans objet)',
    'mail-to': 'À {to}',
    'older-mails': 'Et {n} plus anciens.',
  },
};

/** The languages the page speaks, English (the fallback) first. */
export const LANGUAGES = Object.keys(WORDS);

/** For the page's test: every entry, by language. */
export const ALL = WORDS;

/**
 * The language to speak to a reader who prefers `wanted` (best first):
 * the first whose primary language is here, with the tag it came as (its
 * locale: region and all, for Intl); else English.
 */
export function choose(wanted) {
  for (const tag of wanted || []) {
    const primary = String(tag).toLowerCase().split(/[-_]/)[0];
    if (WORDS[primary]) {
      try { return { lang: primary, locale: Intl.getCanonicalLocales(tag)[0] }; } catch (_) { return { lang: primary, locale: primary }; }
    }
  }
  return { lang: 'en', locale: 'en' };
}

const browser = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
/** The page's language (`en`, `de`, `fr`) and the reader's locale for it (`de-DE`). */
export const { lang, locale } = choose(browser);

const numbers = new Intl.NumberFormat(locale);
const shown = (v) => (typeof v === 'number' ? numbers.format(v) : String(v));
const escapeHTML = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

/** Whether `key` is an entry (in English, and so in every language). */
export const has = (key) => Object.prototype.hasOwnProperty.call(WORDS.en, key);

// The template's blanks filled from `args`; `literal` is applied to the template's own text.
function fill(key, args, literal) {
  const text = WORDS[lang][key] ?? WORDS.en[key] ?? key;
  let out = '', last = 0;
  for (const m of text.matchAll(/\{(\w+)\}/g)) {
    out += literal(text.slice(last, m.index)) + (m[1] in args ? shown(args[m[1]]) : m[0]);
    last = m.index + m[0].length;
  }
  return out + literal(text.slice(last));
}

/** Entry `key` in the page's language, its `{blanks}` filled from `args`: text. */
export const t = (key, args = {}) => fill(key, args, (s) => s);

/**
 * The same as markup: the entry's own text escaped, the blanks filled with
 * `args` as they are (markup the caller built, escaped where it must be).
 */
export const html = (key, args = {}) => fill(key, args, escapeHTML);

/** `group.key` if there is such an entry (a status, a step's state), else `key` itself. */
export const named = (group, key) => (has(`${group}.${key}`) ? t(`${group}.${key}`) : key);

const clocks = {
  long: new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }),
  short: new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', hour12: false }),
};
/** A time in the reader's clock and locale, 24-hour, with seconds unless `short`. */
export const clockTime = (date, short = false) => clocks[short ? 'short' : 'long'].format(date);

const relative = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
/** "in 5 seconds", "in 5 Sekunden", "dans 5 secondes"; 0: "now". */
export const inSeconds = (s) => relative.format(Math.max(0, s), 'second');

const lists = new Intl.ListFormat(locale, { type: 'conjunction' });
/** "a, b and c" in the page's language. */
export const listOf = (items) => lists.format(items);

/**
 * Puts the page's frame into its language: `<html lang>`, the title, every
 * element's text named by `data-w` and aria-label named by `data-w-label`.
 */
export function translatePage() {
  document.documentElement.lang = lang;
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-w]')) el.textContent = t(el.dataset.w);
  for (const el of document.querySelectorAll('[data-w-label]')) el.setAttribute('aria-label', t(el.dataset.wLabel));
}
