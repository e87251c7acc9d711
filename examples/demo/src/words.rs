//! What the demo's services say to the shopper, in the languages the
//! demo's workflows speak. herald shows a refusal's `detail` on the
//! timeline and in the outcome, so each step call says which language its
//! operation speaks (the envelope's `lang`, also `Accept-Language`), and
//! the answer is written in it. English where the call names no other.

use herald_sdk::step::Envelope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Fr,
}

impl Lang {
    /// The language of the operation a call is for.
    pub fn of(env: &Envelope) -> Lang {
        match env.lang.as_deref().map(|l| l.split(['-', '_']).next().unwrap_or(l)) {
            Some("de") => Lang::De,
            Some("fr") => Lang::Fr,
            _ => Lang::En,
        }
    }

    /// What the shop calls an item (the page shows the same names).
    pub fn item(self, sku: &str) -> &str {
        match (self, sku) {
            (Lang::De, "tea") => "Tee",
            (Lang::De, "mug") => "Becher",
            (Lang::De, "kettle") => "Wasserkocher",
            (Lang::Fr, "tea") => "thé",
            (Lang::Fr, "mug") => "tasse",
            (Lang::Fr, "kettle") => "bouilloire",
            _ => sku,
        }
    }

    pub fn card_invalid(self) -> &'static str {
        match self {
            Lang::En => "That card number is not valid.",
            Lang::De => "Diese Kartennummer ist ungültig.",
            Lang::Fr => "Ce numéro de carte n'est pas valide.",
        }
    }

    pub fn card_declined(self) -> &'static str {
        match self {
            Lang::En => "Your card was declined.",
            Lang::De => "Ihre Karte wurde abgelehnt.",
            Lang::Fr => "Votre carte a été refusée.",
        }
    }

    pub fn basket_empty(self) -> &'static str {
        match self {
            Lang::En => "Your basket is empty.",
            Lang::De => "Ihr Warenkorb ist leer.",
            Lang::Fr => "Votre panier est vide.",
        }
    }

    pub fn not_sold(self, sku: &str) -> String {
        match self {
            Lang::En => format!("We do not sell {sku}."),
            Lang::De => format!("{sku} führen wir nicht."),
            Lang::Fr => format!("Nous ne vendons pas « {sku} »."),
        }
    }

    pub fn at_least_one(self, sku: &str) -> String {
        let name = self.item(sku);
        match self {
            Lang::En => format!("Please choose at least one {name}."),
            Lang::De => format!("Bitte wählen Sie mindestens 1 × {name}."),
            Lang::Fr => format!("Veuillez choisir au moins 1 × {name}."),
        }
    }

    pub fn sold_out(self, sku: &str) -> String {
        let name = self.item(sku);
        match self {
            Lang::En => format!("Sorry, {name} is sold out."),
            Lang::De => format!("Leider ist der Artikel {name} ausverkauft."),
            Lang::Fr => format!("Désolé, l'article {name} est épuisé."),
        }
    }

    pub fn only_left(self, n: i64, sku: &str) -> String {
        let name = self.item(sku);
        match self {
            Lang::En => format!("Only {n} {name} left."),
            Lang::De => format!("Vom Artikel {name} sind nur noch {n} Stück da."),
            Lang::Fr => format!("Il ne reste que {n} exemplaires de l'article {name}."),
        }
    }

    pub fn inventory_away(self) -> &'static str {
        match self {
            Lang::En => "The inventory cannot be reached just now.",
            Lang::De => "Das Lager ist gerade nicht erreichbar.",
            Lang::Fr => "Le stock est momentanément inaccessible.",
        }
    }

    pub fn audit_busy(self) -> &'static str {
        match self {
            Lang::En => "The audit store is busy.",
            Lang::De => "Der Speicher für Prüfprotokolle ist gerade ausgelastet.",
            Lang::Fr => "Le stockage des journaux d'audit est occupé pour le moment.",
        }
    }

    /// The order confirmation: (subject, body).
    pub fn confirmation(self, customer: &str, list: &str, paid_cents: Option<u64>) -> (&'static str, String) {
        let (euros, cents) = paid_cents.map_or((0, 0), |c| (c / 100, c % 100));
        match self {
            Lang::En => {
                let paid =
                    paid_cents.map_or(String::new(), |_| format!(" We charged €{euros}.{cents:02} to your card."));
                let body = format!(
                    "Hello {customer},\n\nthank you for your order: {list}.{paid}\n\nWe will let you know when it ships."
                );
                ("Your order is confirmed", body)
            }
            Lang::De => {
                let paid = paid_cents
                    .map_or(String::new(), |_| format!(" Wir haben {euros},{cents:02} € von Ihrer Karte abgebucht."));
                let body = format!(
                    "Hallo {customer},\n\nvielen Dank für Ihre Bestellung: {list}.{paid}\n\nWir sagen Ihnen Bescheid, sobald sie verschickt wird."
                );
                ("Ihre Bestellung ist bestätigt", body)
            }
            Lang::Fr => {
                let paid = paid_cents
                    .map_or(String::new(), |_| format!(" Nous avons débité {euros},{cents:02} € sur votre carte."));
                let body = format!(
                    "Bonjour {customer},\n\nmerci pour votre commande : {list}.{paid}\n\nNous vous préviendrons dès son expédition."
                );
                ("Votre commande est confirmée", body)
            }
        }
    }
}
