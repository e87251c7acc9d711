//! The shop: the steps of `place-order` (reserve stock, charge the card,
//! confirm by email, record analytics) and their compensations.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, http::StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    lock,
    mail::Outbox,
    new_id,
    problem::Problem,
    step::{App, Envelope, Steps, post_step},
};

/// (sku, price in cents, starting stock).
const CATALOG: [(&str, u64, u32); 3] = [("tea", 450, 100), ("mug", 1200, 50), ("kettle", 3900, 10)];

/// The test card that is always declined, as at real payment providers.
const DECLINED_CARD: &str = "4000000000000002";

#[derive(Debug, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
}

// One input type per need, so a step only requires the fields it uses.
#[derive(Debug, Deserialize)]
struct Basket {
    items: Vec<Item>,
}

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
    outbox: Arc<Outbox>,
    stock: Mutex<BTreeMap<String, u32>>,
    /// Stock held per operation id, so the release needs only the envelope.
    held: Mutex<HashMap<String, BTreeMap<String, u32>>>,
    /// Charges per operation id, for the refund.
    charges: Mutex<HashMap<String, Charge>>,
    orders_recorded: AtomicU64,
}

impl App for Shop {
    fn steps(&self) -> &Steps {
        &self.steps
    }
}

pub fn router(pace: Duration) -> Router {
    let shop = Arc::new(Shop {
        steps: Steps::new(pace),
        outbox: Outbox::new(),
        stock: Mutex::new(CATALOG.iter().map(|(sku, _, stock)| (sku.to_string(), *stock)).collect()),
        held: Mutex::default(),
        charges: Mutex::default(),
        orders_recorded: AtomicU64::new(0),
    });
    Router::new()
        .route("/inventory/reserve", post_step(Shop::reserve))
        .route("/inventory/release", post_step(Shop::release))
        .route("/payment/charge", post_step(Shop::charge))
        .route("/payment/refund", post_step(Shop::refund))
        .route("/email/send-confirmation", post_step(Shop::send_confirmation))
        .route("/analytics/record", post_step(Shop::record))
        .with_state(shop.clone())
        .merge(shop.steps.routes())
        .merge(shop.outbox.routes())
}

impl Shop {
    fn reserve(&self, env: &Envelope) -> Result<Value, Problem> {
        let Basket { items } = env.input()?;
        let wanted = totals(&items)?;
        let mut stock = lock(&self.stock);
        // Check everything before taking anything: all or nothing.
        for (sku, qty) in &wanted {
            let left = stock.get(sku).copied().unwrap_or(0);
            if left < *qty {
                let detail =
                    if left == 0 { format!("Sorry, {sku} is sold out.") } else { format!("Only {left} {sku} left.") };
                return Err(Problem::new(StatusCode::CONFLICT, "out-of-stock", "Not enough stock", detail));
            }
        }
        for (sku, qty) in &wanted {
            if let Some(left) = stock.get_mut(sku) {
                *left -= qty;
            }
        }
        let mut held = lock(&self.held);
        let mine = held.entry(env.operation_id.clone()).or_default();
        for (sku, qty) in &wanted {
            *mine.entry(sku.clone()).or_default() += qty;
        }
        Ok(json!({ "reservation": new_id("res"), "items": as_items(&wanted) }))
    }

    fn release(&self, env: &Envelope) -> Result<Value, Problem> {
        // Nothing held (the reserve never went through) is a successful, empty release.
        let held = lock(&self.held).remove(&env.operation_id).unwrap_or_default();
        let mut stock = lock(&self.stock);
        for (sku, qty) in &held {
            *stock.entry(sku.clone()).or_default() += qty;
        }
        Ok(json!({ "released": as_items(&held) }))
    }

    fn charge(&self, env: &Envelope) -> Result<Value, Problem> {
        let Payment { items, card } = env.input()?;
        let card: String = card.chars().filter(|c| !c.is_whitespace()).collect();
        if !(12..=19).contains(&card.len()) || !card.chars().all(|c| c.is_ascii_digit()) {
            return Err(Problem::invalid_input("That card number is not valid."));
        }
        if card == DECLINED_CARD {
            return Err(Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "card-declined",
                "Card declined",
                "Your card was declined.",
            ));
        }
        let amount_cents = price(&totals(&items)?);
        let id = new_id("ch");
        lock(&self.charges).insert(env.operation_id.clone(), Charge { id: id.clone(), amount_cents });
        Ok(json!({ "charge": id, "amount_cents": amount_cents, "card_last4": &card[card.len() - 4..] }))
    }

    fn refund(&self, env: &Envelope) -> Result<Value, Problem> {
        // No charge on file means nothing was taken: say so rather than fail.
        match lock(&self.charges).remove(&env.operation_id) {
            Some(c) => Ok(json!({ "refund": new_id("re"), "charge": c.id, "amount_cents": c.amount_cents })),
            None => Ok(json!({ "refund": null, "amount_cents": 0 })),
        }
    }

    fn send_confirmation(&self, env: &Envelope) -> Result<Value, Problem> {
        let Customer { customer, items } = env.input()?;
        let list = items.iter().map(|i| format!("{} × {}", i.qty, i.sku)).collect::<Vec<_>>().join(", ");
        let paid = match env.result("charge-payment", "amount_cents").and_then(Value::as_u64) {
            Some(cents) => format!(" We charged €{}.{:02} to your card.", cents / 100, cents % 100),
            None => String::new(),
        };
        let body = format!(
            "Hello {customer},\n\nthank you for your order: {list}.{paid}\n\nWe will let you know when it ships."
        );
        let message_id = self.outbox.send(&env.operation_id, &customer, "Your order is confirmed", body);
        Ok(json!({ "message_id": message_id }))
    }

    fn record(&self, _env: &Envelope) -> Result<Value, Problem> {
        let orders = self.orders_recorded.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(json!({ "event": "order_placed", "orders_recorded": orders }))
    }
}

/// Quantity per sku, refusing an empty basket, zero quantities and skus we do not sell.
fn totals(items: &[Item]) -> Result<BTreeMap<String, u32>, Problem> {
    if items.is_empty() {
        return Err(Problem::invalid_input("Your basket is empty."));
    }
    let mut wanted = BTreeMap::new();
    for Item { sku, qty } in items {
        if !CATALOG.iter().any(|(s, _, _)| s == sku) {
            return Err(Problem::invalid_input(format!("We do not sell {sku}.")));
        }
        if *qty == 0 {
            return Err(Problem::invalid_input(format!("Please choose at least one {sku}.")));
        }
        let total: &mut u32 = wanted.entry(sku.clone()).or_default();
        *total = total.saturating_add(*qty);
    }
    Ok(wanted)
}

/// Total price in cents; every sku was checked by [`totals`].
fn price(wanted: &BTreeMap<String, u32>) -> u64 {
    wanted
        .iter()
        .map(|(sku, qty)| CATALOG.iter().find(|(s, _, _)| s == sku).map_or(0, |(_, cents, _)| cents * u64::from(*qty)))
        .sum()
}

fn as_items(wanted: &BTreeMap<String, u32>) -> Vec<Value> {
    wanted.iter().map(|(sku, qty)| json!({ "sku": sku, "qty": qty })).collect()
}
