// Browser check of the demo page as a reader in Germany gets it: Chromium
// with the locale de-DE (navigator.languages and Accept-Language `de-DE`).
//
// Run by `cargo test -p herald --test ui` (crates/cli/tests/ui.rs), which
// starts `herald demo --pace 1s` and runs this with HERALD_URL set. Through
// the page, as a person would:
//
//  1. the page's own words are German (words.js): `<html lang="de">`, the
//     title, headings, labels and buttons; every entry of words.js is there
//     in every language it speaks, with the same blanks as the English;
//  2. a declined order: herald's German step labels and timeline ("Anfrage
//     erhalten", …), the same as the API tells a German reader; when it is
//     expected, in herald's German and the reader's clock; the German
//     outcome for the declined card, rolled back on the page in German
//     (badge, entry, basket, the sentence announced);
//  3. the bell: its label, the panel and the notification, German;
//  4. a second order while one runs: the dialog in German, herald's reason
//     in German, "Die frühere behalten" announced in German;
//  5. an account deletion: the busy audit store retried ("Versuch 1 von 5
//     ist fehlgeschlagen … Neuer Versuch um … (in … Sekunden)"), the erased
//     address and the farewell email in "Demo-E-Mails", German;
//  6. at each of these moments no English text of the page's own or of
//     herald's is shown, and axe finds nothing serious;
//  7. an English browser still gets the English page and an English
//     operation; a French one the French page.
//
// Every wait is a condition with a deadline. Exit code 0 when every check
// passed; the last line is "N passed, N failed".

import { allHeard, base, check, checkAxe, finish, heard, open, recordHeard, shot, until } from './harness.mjs';

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const text = async (page, sel) => ((await page.locator(sel).first().textContent()) || '').replace(/\s+/g, ' ').trim();
/** The operation as herald tells it to a reader of `lang`. */
const getView = async (id, lang) => (await fetch(`${base}/v1/operations/${id}`, { headers: { 'accept-language': lang } })).json();

// Records what the shown operation's steps and notices said, so a state
// shown briefly (a step running, a retry) is seen between two looks.
async function recordOp(page) {
  await page.evaluate(() => {
    if (window.__opObs) window.__opObs.disconnect();
    const seen = window.__op = new Set();
    const snap = () => {
      for (const el of document.querySelectorAll('#op-steps .step, #op-notices .notice, #op-notices .expect')) {
        seen.add(el.textContent.replace(/\s+/g, ' ').trim());
      }
    };
    window.__opObs = new MutationObserver(snap);
    window.__opObs.observe(document.querySelector('#op'), { childList: true, subtree: true, characterData: true });
    snap();
  });
}
const sawOp = (page, re, timeout = 20000) =>
  until(page, (re) => Array.from(window.__op || []).some((t) => new RegExp(re).test(t)), re.source, timeout);
const opSeen = (page) => page.evaluate(() => Array.from(window.__op || []));

/** Clicks the button named `name` and waits for the URL to name a new operation: its id. */
async function startOperation(page, name) {
  const before = await page.evaluate(() => location.hash);
  await page.getByRole('button', { name }).click();
  await until(page, (h) => /^#op_/.test(location.hash) && location.hash !== h, before);
  return (await page.evaluate(() => location.hash)).slice(1);
}

/**
 * English shown on a page that should be all German: the page's own English
 * entries that German says otherwise (the longest run of words between
 * blanks), and herald's English for the demo's operations. Read from the
 * page's text and its aria-labels.
 */
async function englishShown(page) {
  return page.evaluate(async (herald) => {
    const { ALL } = await import('/ui/words.js');
    const phrases = new Set(herald);
    for (const [key, en] of Object.entries(ALL.en)) {
      if (ALL.de[key] === en) continue;
      const longest = en.split(/\{\w+\}/).map((s) => s.trim().replace(/^[(:.,;]+|[(:.,;]+$/g, '').trim())
        .sort((a, b) => b.length - a.length)[0];
      if (longest && longest.length >= 6) phrases.add(longest);
    }
    const labels = Array.from(document.querySelectorAll('[aria-label]'), (el) => el.getAttribute('aria-label'));
    const shown = [document.body.innerText, document.title, ...labels].join('\n');
    return [...phrases].filter((p) => shown.includes(p));
  }, HERALD_ENGLISH);
}
// herald's English about the demo's operations: its phrases and the demo workflows' labels.
const HERALD_ENGLISH = ['Request received', 'did not go through', 'Undone:', 'Your order', 'Reserving your items',
  'Items reserved', 'Taking your payment', 'Your card was declined', 'Usually takes', 'Deleting your account',
  'Deleting your audit records', 'The audit store is busy', 'trying again', 'Erased from our records'];

async function noEnglish(page, when) {
  const found = await englishShown(page);
  check(`${when}: no English is shown`, found.length === 0, JSON.stringify(found));
}

/* ---------- 1. the page's own words, in German ---------- */
const { browser, page, errors, refusals } = await open({ locale: 'de-DE' });
const others = [];
const run = Date.now().toString(36);
try {
  await page.goto(base + '/');
  await recordHeard(page);
  check('the browser asks for German', (await page.evaluate(() => navigator.languages.join(','))).startsWith('de-DE'));
  check('<html lang="de">', (await page.evaluate(() => document.documentElement.lang)) === 'de');
  check('the title is German', (await page.title()) === 'herald-Demo', await page.title());
  const headings = (await page.locator('main h2').allTextContents()).map((h) => h.trim());
  check('the headings are German', ['Konto', 'Letzte Vorgänge', 'Was gerade passiert'].every((h) => headings.includes(h)), JSON.stringify(headings));
  check('the buttons are German', await page.getByRole('button', { name: 'Bestellung aufgeben' }).isVisible()
    && await page.getByRole('button', { name: 'Mein Konto löschen' }).isVisible()
    && await page.getByRole('button', { name: /^Abgelehnte Karte/ }).isVisible());
  check('the form labels are German', await page.getByLabel('Sie sind').isVisible() && await page.getByLabel('Kartennummer').isVisible()
    && await page.getByLabel('Wasserkocher').isVisible());

  const dictionary = await page.evaluate(async () => {
    const { ALL, LANGUAGES } = await import('/ui/words.js');
    const blanks = (s) => (s.match(/\{\w+\}/g) || []).sort().join(' ');
    const bad = [];
    for (const lang of LANGUAGES) {
      for (const [key, en] of Object.entries(ALL.en)) {
        if (!(key in ALL[lang])) bad.push(`${lang}: no ${key}`);
        else if (blanks(ALL[lang][key]) !== blanks(en)) bad.push(`${lang}: ${key} has other blanks`);
      }
      for (const key of Object.keys(ALL[lang])) if (!(key in ALL.en)) bad.push(`${lang}: ${key} is not in English`);
    }
    return { languages: LANGUAGES, bad };
  });
  check('words.js speaks English, German and French', JSON.stringify(dictionary.languages) === '["en","de","fr"]', JSON.stringify(dictionary.languages));
  check('every entry of words.js is in every language, with the same blanks', dictionary.bad.length === 0, dictionary.bad.join('; '));
  const who = `ui-de-${run}`;
  await page.getByLabel('Sie sind').fill(who);
  await page.locator('#bell').waitFor({ state: 'visible', timeout: 10000 }).catch(() => {});
  await noEnglish(page, 'at first');
  await checkAxe(page, 'German, at first');

  /* ---------- 2. a declined order ---------- */
  await page.getByLabel('Tee').fill('1');
  await page.getByRole('button', { name: /^Abgelehnte Karte/ }).click();
  await recordOp(page);
  const declined = await startOperation(page, 'Bestellung aufgeben');
  check('the declined order is shown', /^op_/.test(declined), declined);
  check('a step is shown running, with its German label', await sawOp(page, /^In Bearbeitung: (Reservierung Ihrer Artikel|Ihre Zahlung)…/),
    JSON.stringify(await opSeen(page)));
  const expected = await sawOp(page, /^Dauert meist weniger als 20 Sekunden · erwartet bis \d\d:\d\d:\d\d$/, 5000);
  check('when it is expected, in German and the reader\'s clock', expected, JSON.stringify(await opSeen(page)));
  await page.locator('.outcome.failed').waitFor({ timeout: 30000 }).catch(() => {});
  const view = await getView(declined, 'de');
  const outcome = await text(page, '.outcome.failed').catch(() => '');
  check('the outcome is herald\'s German for the declined card', outcome === view.outcome.summary
    && outcome.startsWith('Ihre Bestellung ist nicht zustande gekommen: Ihre Zahlung ist fehlgeschlagen (Ihre Karte wurde abgelehnt).'),
    `page: ${outcome} / api: ${view.outcome && view.outcome.summary}`);
  check('the operation spoke German from its start', view.lang === 'de' && view.label === 'Ihre Bestellung', `${view.lang} ${view.label}`);
  const stepsShown = await page.locator('#op-steps .step').allTextContents();
  check('the steps carry their German labels', ['Artikel reserviert', 'Ihre Zahlung', 'Versand Ihrer Bestätigungs-E-Mail']
    .every((l) => stepsShown.some((s) => s.includes(l))), JSON.stringify(stepsShown));
  check('the reservation is shown undone, in German', /Rückgängig gemacht: Artikel reserviert/.test(await text(page, '.s-compensated'))
    && /Artikel wieder freigegeben/.test(await text(page, '.s-compensated')));
  check('the status badge is German', (await text(page, '#op-badge')) === 'Nicht zustande gekommen', await text(page, '#op-badge'));
  await until(page, (n) => document.querySelectorAll('#op-log li').length >= n, view.timeline.length, 5000);
  const log = (await page.locator('#op-log li span').allTextContents()).map((s) => s.trim());
  check('the log is herald\'s German timeline, as the API tells it', JSON.stringify(log) === JSON.stringify(view.timeline.map((e) => e.message))
    && log[0] === 'Anfrage erhalten' && log[1] === 'Gestartet' && log.includes('Reservierung Ihrer Artikel'), JSON.stringify(log));
  check('the meta line is German', /^Für ui-de-.* · begonnen um \d\d:\d\d:\d\d · beendet um \d\d:\d\d:\d\d · op_/.test(await text(page, '#op-meta')), await text(page, '#op-meta'));
  const entry = page.locator('#recent-list li.o-rolled-back', { hasText: 'Tee × 1' });
  await entry.first().waitFor({ timeout: 10000 }).catch(() => {});
  const entryText = (await entry.count()) ? await text(page, '#recent-list li.o-rolled-back') : await text(page, '#recent-list');
  check('the order is rolled back on the page, in German', /Zurückgenommen/.test(entryText)
    && /Artikel reserviert: rückgängig gemacht \(Artikel wieder freigegeben\)/.test(entryText)
    && /Ihre Artikel liegen wieder in Ihrem Warenkorb\./.test(entryText), entryText);
  check('the items are back in the basket', (await page.inputValue('input[data-sku="tea"]')) === '1');
  const said = `Ihre Bestellung wurde zurückgenommen. ${view.outcome.summary} Ihre Artikel liegen wieder in Ihrem Warenkorb.`;
  check('the rollback is announced in German', await heard(page, new RegExp('^' + esc(said) + '$')), await allHeard(page));
  await shot(page, 'german-declined.png', true);
  await noEnglish(page, 'declined order');
  await checkAxe(page, 'German, declined order');

  /* ---------- 3. the bell ---------- */
  const bell = page.locator('#bell');
  const unread = await until(page, () => /^Benachrichtigungen, [1-9]\d* ungelesen$/.test(document.querySelector('#bell').getAttribute('aria-label')), null, 10000);
  check('the bell says in German how many are unread', unread, await bell.getAttribute('aria-label'));
  await bell.click();
  const panel = page.getByRole('region', { name: 'Benachrichtigungen' });
  check('the panel is German', await panel.isVisible() && await panel.getByRole('button', { name: 'Alle als gelesen markieren' }).isVisible()
    && await panel.getByRole('button', { name: 'Benachrichtigungen schließen' }).isVisible());
  const note = panel.locator(`.nt[data-op="${declined}"]`);
  await until(page, (id) => /nicht zustande gekommen/.test(document.querySelector(`#notif-list .nt[data-op="${id}"]`)?.textContent || ''), declined);
  const noteText = (await note.count()) ? (await note.first().textContent()).replace(/\s+/g, ' ').trim() : await text(page, '#notif-panel');
  check('the notification is German', /Ihre Bestellung/.test(noteText) && /Problem: Ihre Bestellung ist nicht zustande gekommen/.test(noteText)
    && /Sie können es erneut versuchen\./.test(noteText), noteText);
  await shot(page, 'german-bell.png');
  await noEnglish(page, 'bell panel open');
  await checkAxe(page, 'German, bell panel open');
  await page.keyboard.press('Escape');

  /* ---------- 4. two orders at once: the dialog ---------- */
  await page.getByLabel('Tee').fill('1');
  await page.getByRole('button', { name: /^Gültige Karte/ }).click();
  const first = await startOperation(page, 'Bestellung aufgeben');
  await page.getByLabel('Tee').fill('1');
  const second = await startOperation(page, 'Bestellung aufgeben');
  const opened = await until(page, () => document.querySelector('#decide').open, null, 10000);
  check('a second order while one runs opens the dialog', opened && first !== second);
  const dialog = page.getByRole('dialog', { name: 'Die frühere Anfrage behalten oder ersetzen?' });
  check('the dialog is German', await dialog.isVisible() && await dialog.getByRole('button', { name: 'Die frühere behalten' }).isVisible()
    && await dialog.getByRole('button', { name: 'Durch diese ersetzen' }).isVisible()
    && await dialog.getByRole('button', { name: 'Später entscheiden' }).isVisible());
  check('herald\'s reason is German', (await text(page, '#decide-said')).startsWith('Eine frühere Anfrage läuft noch: Wählen Sie'), await text(page, '#decide-said'));
  const timeLeft = await text(page, '#decide-time');
  check('the time left and the default, in German', /^Wenn Sie nicht bis \d\d:\d\d:\d\d \(in \d+ Sekunden\) wählen, bleibt die frühere Anfrage bestehen und diese wird nicht ausgeführt \(die Voreinstellung\)\.$/.test(timeLeft), timeLeft);
  await until(page, () => /Ihre Bestellung/.test(document.querySelector('#decide-old').textContent), null, 5000);
  check('both orders are described in German', /Ihre Bestellung · Tee × 1/.test(await text(page, '#decide-old'))
    && /Nicht begonnen: Sie wartet auf Ihre Wahl\./.test(await text(page, '#decide-new')), `${await text(page, '#decide-old')} / ${await text(page, '#decide-new')}`);
  await shot(page, 'german-dialog.png');
  await noEnglish(page, 'dialog open');
  await checkAxe(page, 'German, dialog open');
  await dialog.getByRole('button', { name: 'Die frühere behalten' }).click();
  check('the choice is announced in German', await heard(page, /^Sie haben die frühere Anfrage behalten; diese wird nicht ausgeführt\.$/), await allHeard(page));
  await until(page, (id) => !!document.querySelector(`#recent-list li.o-rolled-back [data-op="${id}"]`), second, 15000);
  check('the kept-out order is rolled back, with herald\'s German reason', /Ihre Bestellung wurde abgebrochen \(Sie haben die frühere Anfrage behalten\)/
    .test(await text(page, '#recent-list')), await text(page, '#recent-list'));

  /* ---------- 5. an account deletion ---------- */
  await page.getByLabel('E-Mail', { exact: true }).fill(`${who}@example.com`);
  await recordOp(page);
  const deletion = await startOperation(page, 'Mein Konto löschen');
  const retried = await sawOp(page, /Löschung Ihrer Prüfprotokolle.*Versuch 1 von 5 ist fehlgeschlagen: Der Speicher für Prüfprotokolle ist gerade ausgelastet\. Neuer Versuch (um \d\d:\d\d:\d\d \((in \d+ Sekunden?|jetzt)\)|in Kürze)/, 30000);
  check('the busy audit store is shown retried, in German', retried, JSON.stringify(await opSeen(page)));
  await page.locator('.outcome.succeeded').waitFor({ timeout: 40000 }).catch(() => {});
  check('the deletion\'s outcome is German', (await text(page, '.outcome.succeeded').catch(() => '')).startsWith('Löschung Ihres Kontos: erledigt.'),
    await text(page, '#op-notices'));
  const erased = page.locator('#op .erased');
  await erased.waitFor({ timeout: 15000 }).catch(() => {});
  check('the erased address is said in German', (await erased.count()) === 1 && /^Ihre E-Mail-Adresse wurde gelöscht/.test(await text(page, '#op .erased')),
    await text(page, '#op-notices'));
  await page.locator('#mail summary').click();
  const mail = page.locator('#mail-list li', { hasText: `${who}@example.com` });
  await mail.first().waitFor({ timeout: 10000 }).catch(() => {});
  const mailText = (await mail.count()) ? (await mail.first().textContent()).replace(/\s+/g, ' ').trim() : await text(page, '#mail');
  check('the farewell email is German, under a German heading', /^Demo-E-Mails/.test(await text(page, '#mail summary'))
    && /Löschung Ihres Kontos: erledigt/.test(mailText) && new RegExp(`An ${esc(who)}@example\\.com`).test(mailText), mailText);
  check('the deletion spoke German', (await getView(deletion, 'de')).lang === 'de');
  await shot(page, 'german-account.png', true);
  await noEnglish(page, 'account deleted, emails open');
  await checkAxe(page, 'German, account deleted');

  check('no script errors', errors.length === 0, errors.join('; '));
  check('no Content-Security-Policy violation', refusals.length === 0, refusals.join('; '));

  /* ---------- 7. English and French browsers ---------- */
  {
    const en = await open({ locale: 'en-US' });
    others.push(en.browser);
    await en.page.goto(base + '/');
    check('English: <html lang="en">', (await en.page.evaluate(() => document.documentElement.lang)) === 'en');
    check('English: the headings and buttons are English', (await en.page.locator('#op-title').textContent()).trim() === 'What is happening'
      && await en.page.getByRole('button', { name: 'Place order' }).isVisible() && await en.page.getByLabel('You are').isVisible());
    await en.page.getByLabel('You are').fill(`ui-en-${run}`);
    await en.page.getByLabel('Tea').fill('1');
    await en.page.getByRole('button', { name: /^Declined card/ }).click();
    const id = await startOperation(en.page, 'Place order');
    await en.page.locator('.outcome.failed').waitFor({ timeout: 30000 }).catch(() => {});
    const outcomeEn = await text(en.page, '.outcome.failed').catch(() => '');
    check('English: the operation is English', outcomeEn.startsWith('Your order did not go through: Taking your payment failed (Your card was declined).')
      && (await text(en.page, '#op-log li span')) === 'Request received', outcomeEn);
    check('English: the status badge is English', (await text(en.page, '#op-badge')) === 'Did not go through');
    check('English: herald told it in English', (await getView(id, 'en')).lang === 'en');
    check('English: no script errors', en.errors.length === 0, en.errors.join('; '));
  }
  {
    const fr = await open({ locale: 'fr-FR' });
    others.push(fr.browser);
    await fr.page.goto(base + '/');
    check('French: <html lang="fr"> and French words', (await fr.page.evaluate(() => document.documentElement.lang)) === 'fr'
      && (await fr.page.locator('#op-title').textContent()).trim() === 'Ce qui se passe'
      && await fr.page.getByRole('button', { name: 'Passer la commande' }).isVisible());
    // An order placed in German, read by a French browser: herald tells it again in French.
    await fr.page.goto(`${base}/#${declined}`);
    await fr.page.locator('.outcome.failed').waitFor({ timeout: 10000 }).catch(() => {});
    check('French: a German order is told again in French', (await text(fr.page, '.outcome.failed').catch(() => ''))
      .startsWith('Votre commande n\'a pas abouti : Votre paiement a échoué'), await text(fr.page, '#op'));
  }
} catch (e) {
  check('the run finished', false, e.stack || String(e));
}
for (const b of others) await b.close().catch(() => {});
await finish(browser);
