//! The shop's payment and email: the middle and last steps of
//! `place-order` (charge the card, confirm by email) and the refund. Its
//! inventory and analytics are in their own modules, served by the same app.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, http::StatusCode};
use herald_sdk::step::{Envelope, StepReply};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    catalog::{Item, price, totals},
    lock,
    mail::Mailbox,
    new_id,
    step::{App, Steps, post_step, refuse},
    words::Lang,
};

/// The test card that is always declined, as at real payment providers.
const DECLINED_CARD: &str = "4000000000000002";

// One input type per need, so a step only requires the fields it uses.
#[derive(Debug, Deserialize)]
struct Payment {
    items: Vec<Item>,
    card: String,
}

#[derive(Debug, Deserialize)]
struct Customer {
    customer: String,
    items: Vec<Item>,
}

#[derive(Debug)]
struct Charge {
    id: String,
    amount_cents: u64,
}

#[derive(Debug)]
struct Shop {
    steps: Arc<Steps>,
    mailbox: Arc<Mailbox>,
    /// Charges per operation id, for the refund.
    charges: Mutex<HashMap<String, Charge>>,
}

impl App for Shop {
    fn steps(&self) -> &Steps {
        &self.steps
    }
}

pub fn router(pace: Duration) -> Router {
    let shop = Arc::new(Shop { steps: Steps::new(pace), mailbox: Mailbox::new(), charges: Mutex::default() });
    Router::new()
        .route("/payment/charge", post_step(Shop::charge))
        .route("/payment/refund", post_step(Shop::refund))
        .route("/email/send-confirmation", post_step(Shop::send_confirmation))
        .with_state(shop.clone())
        .merge(shop.steps.routes())
        .merge(shop.mailbox.routes())
}

impl Shop {
    fn charge(&self, env: &Envelope) -> Result<Value, StepReply> {
        let Payment { items, card } = env.input()?;
        let lang = Lang::of(env);
        let card: String = card.chars().filter(|c| !c.is_whitespace()).collect();
        if !(12..=19).contains(&card.len()) || !card.chars().all(|c| c.is_ascii_digit()) {
            return Err(StepReply::failed(lang.card_invalid()));
        }
        if card == DECLINED_CARD {
            return Err(refuse(StatusCode::PAYMENT_REQUIRED, lang.card_declined()));
        }
        let amount_cents = price(&totals(&items, lang)?);
        let id = new_id("ch");
        lock(&self.charges).insert(env.operation_id.clone(), Charge { id: id.clone(), amount_cents });
        Ok(json!({ "charge": id, "amount_cents": amount_cents, "card_last4": &card[card.len() - 4..] }))
    }

    fn refund(&self, env: &Envelope) -> Result<Value, StepReply> {
        // No charge on file means nothing was taken: say so rather than fail.
        match lock(&self.charges).remove(&env.operation_id) {
            Some(c) => Ok(json!({ "refund": new_id("re"), "charge": c.id, "amount_cents": c.amount_cents })),
            None => Ok(json!({ "refund": null, "amount_cents": 0 })),
        }
    }

    fn send_confirmation(&self, env: &Envelope) -> Result<Value, StepReply> {
        let Customer { customer, items } = env.input()?;
        let lang = Lang::of(env);
        let list = items.iter().map(|i| format!("{} × {}", i.qty, lang.item(&i.sku))).collect::<Vec<_>>().join(", ");
        let paid = env.result("charge-payment", "amount_cents").and_then(Value::as_u64);
        let (subject, body) = lang.confirmation(&customer, &list, paid);
        let message_id = self.mailbox.send(&env.operation_id, &customer, subject, body);
        Ok(json!({ "message_id": message_id }))
    }
}
