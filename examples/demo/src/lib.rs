//! herald's demo applications: real HTTP services that herald's workflows
//! call, built on herald's SDK, so `herald demo` and the tests exercise the
//! whole path (envelope, idempotency keys, retries, compensation, problem
//! details, the transactional outbox, push subscriptions).
//!
//! Two apps, each one axum server on its own loopback port:
//! - the **shop** runs `place-order`: inventory, payment, email; and
//!   analytics, which is not called but subscribes to the `orders` and
//!   `inventory` topics;
//! - the **account** service runs `delete-account`: the deletes and the
//!   farewell email.
//!
//! The inventory keeps stock and holds in SQLite under the data directory
//! (`GET /inventory/stock`), with the SDK's inbox and outbox; its events
//! reach herald through the outbox's relay once [`Demo::start_relay`] is
//! called. Everything else is in memory and shown for inspection:
//! `GET /applied` (how many times each idempotency key's work was applied),
//! `GET /audit/load` (the audit store's calls in flight, and their peak),
//! `GET /outbox` (mail sent, newest first), `GET /analytics` (counts).
//!
//! # Layout
//! - `lib.rs` — [`start`], [`Demo`], [`workflows`], [`subscriptions`]:
//!   binding and serving the apps, and what herald needs to know of them.
//! - `shop.rs` — the payment and email steps.
//! - `inventory.rs` — reserve and release on SQLite, with the inbox, the
//!   outbox and its relay.
//! - `analytics.rs` — the push endpoint counting orders and stock movements.
//! - `catalog.rs` — what the shop sells, and the basket checks.
//! - `account.rs` — the account service's steps, including the flaky audit store.
//! - `step.rs` — what every in-memory step endpoint does around the SDK's
//!   `StepCall`: dedupe, pace, work, keep the final reply.
//! - `words.rs` — what the services tell the shopper, in the operation's
//!   language (English, German, French).
//! - `dedupe.rs` — the in-memory idempotency store and the applied counts.
//! - `mail.rs` — the in-memory mailbox both apps send mail into.
//! - [`smtp`] — a local SMTP sink, where herald's own emails go in the demo.
//! - `../workflows/*.toml` — the workflow files, embedded by [`workflows`].

mod account;
mod analytics;
mod catalog;
mod dedupe;
mod inventory;
mod mail;
mod shop;
pub mod smtp;
mod step;
mod words;

use std::{
    net::Ipv4Addr,
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use axum::{Router, http::StatusCode};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

pub use crate::inventory::restock;
use crate::inventory::{Announcer, Inventory};

/// herald service names the shop answers for.
const SHOP_SERVICES: [&str; 4] = ["inventory", "payment", "email", "analytics"];
/// herald service names the account service answers for.
const ACCOUNT_SERVICES: [&str; 6] = ["transactions", "logs", "audit", "domain-data", "accounts", "mailer"];

/// The two running apps. Dropping it stops them, and the relay.
#[derive(Debug)]
pub struct Demo {
    /// e.g. `http://127.0.0.1:41234`, no trailing slash.
    pub shop_url: String,
    pub account_url: String,
    relay: Arc<Announcer>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds both apps on `127.0.0.1:0` and serves them in background tasks.
/// `pace` is how long each forward step takes (zero in tests); the
/// inventory's database is kept in `data_dir` (created if missing), so its
/// stock carries over to the next start on the same directory.
pub async fn start(pace: Duration, data_dir: &Path) -> anyhow::Result<Demo> {
    let inventory = Inventory::open(data_dir, pace).await?;
    let relay = inventory.announcer();
    let shop_app = shop::router(pace).merge(inventory::router(inventory)).merge(analytics::router());
    let (shop_url, shop) = serve("shop", shop_app).await?;
    let (account_url, account) = match serve("account", account::router(pace)).await {
        Ok(bound) => bound,
        Err(e) => {
            shop.abort();
            return Err(e);
        }
    };
    Ok(Demo { shop_url, account_url, relay, tasks: vec![shop, account] })
}

impl Demo {
    /// (herald service name, base URL) pairs for herald's `[services]` config.
    pub fn services(&self) -> Vec<(String, String)> {
        let shop = SHOP_SERVICES.iter().map(|s| (s.to_string(), self.shop_url.clone()));
        let account = ACCOUNT_SERVICES.iter().map(|s| (s.to_string(), self.account_url.clone()));
        shop.chain(account).collect()
    }

    /// Starts publishing the inventory's outbox to herald at `herald_url`
    /// (its address is known only once herald is built). Events committed
    /// before wait in the outbox until then. The relay runs as long as the
    /// demo; it sends no token, so herald must let it publish anonymously.
    pub fn start_relay(&self, herald_url: &str) {
        self.relay.start(herald_url);
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.relay.stop();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The push subscriptions herald needs for the demo's choreography, as
/// (name, definition in `[subscriptions]`' schema): analytics hears of
/// every order placed and every stock movement.
pub fn subscriptions() -> Vec<(&'static str, Value)> {
    let push = json!({ "service": "analytics", "path": analytics::EVENTS_PATH });
    vec![
        ("analytics-orders", json!({ "topic": "orders", "push": push })),
        ("analytics-inventory", json!({ "topic": inventory::TOPIC, "push": push })),
    ]
}

/// The workflow files, embedded: (file name, TOML text).
pub fn workflows() -> Vec<(&'static str, &'static str)> {
    vec![
        ("place-order.toml", include_str!("../../workflows/place-order.toml")),
        ("delete-account.toml", include_str!("../../workflows/delete-account.toml")),
    ]
}

async fn serve(name: &'static str, app: Router) -> anyhow::Result<(String, JoinHandle<()>)> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.with_context(|| format!("binding the {name} app"))?;
    let addr = listener.local_addr().with_context(|| format!("reading the {name} app's address"))?;
    // Unknown paths answer problem+json too, so herald shows a readable reason.
    let app = app.fallback(|| async { step::refuse(StatusCode::NOT_FOUND, "There is nothing at this address.") });
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(app = name, error = %e, "demo app stopped");
        }
    });
    tracing::info!(app = name, %addr, "demo app listening");
    Ok((format!("http://{addr}"), task))
}

/// Locks a mutex, shrugging off poisoning: the demo's state stays valid
/// even if a holder panicked, since no update is left half-done.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A readable unique id such as `ch_000042`.
fn new_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}_{:06}", NEXT.fetch_add(1, Ordering::Relaxed))
}
