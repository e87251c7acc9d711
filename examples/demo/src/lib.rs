//! herald's demo applications: real HTTP services that herald's workflows
//! call, so `herald demo` and the tests exercise the whole path (envelope,
//! idempotency keys, retries, compensation, problem details).
//!
//! Two apps, each one axum server on its own loopback port:
//! - the **shop** runs `place-order`: inventory, payment, email, analytics;
//! - the **account** service runs `delete-account`: the deletes and the
//!   farewell email.
//!
//! Both keep their state in memory and show it for inspection:
//! `GET /applied` (how many times each idempotency key's work was applied)
//! and `GET /outbox` (mail sent, newest first).
//!
//! # Layout
//! - `lib.rs` — [`start`], [`Demo`], [`workflows`]: binding and serving the apps.
//! - `shop.rs` — the shop's steps and its stock, charges and analytics.
//! - `account.rs` — the account service's steps, including the flaky audit store.
//! - `step.rs` — what every step endpoint does: read the envelope, dedupe,
//!   pace, work, keep the final answer.
//! - `dedupe.rs` — the idempotency store and the applied counts.
//! - `problem.rs` — failure answers as `application/problem+json`.
//! - `mail.rs` — the in-memory outbox both apps send mail into.
//! - [`smtp`] — a local SMTP sink, where herald's own emails go in the demo.
//! - `../workflows/*.toml` — the workflow files, embedded by [`workflows`].

mod account;
mod dedupe;
mod mail;
mod problem;
mod shop;
pub mod smtp;
mod step;

use std::{
    net::Ipv4Addr,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use axum::Router;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::problem::Problem;

/// herald service names the shop answers for.
const SHOP_SERVICES: [&str; 4] = ["inventory", "payment", "email", "analytics"];
/// herald service names the account service answers for.
const ACCOUNT_SERVICES: [&str; 6] = ["transactions", "logs", "audit", "domain-data", "accounts", "mailer"];

/// The two running apps. Dropping it stops them.
#[derive(Debug)]
pub struct Demo {
    /// e.g. `http://127.0.0.1:41234`, no trailing slash.
    pub shop_url: String,
    pub account_url: String,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds both apps on `127.0.0.1:0` and serves them in background tasks.
/// `pace` is how long each forward step takes (zero in tests).
pub async fn start(pace: Duration) -> anyhow::Result<Demo> {
    let (shop_url, shop) = serve("shop", shop::router(pace)).await?;
    let (account_url, account) = match serve("account", account::router(pace)).await {
        Ok(bound) => bound,
        Err(e) => {
            shop.abort();
            return Err(e);
        }
    };
    Ok(Demo { shop_url, account_url, tasks: vec![shop, account] })
}

impl Demo {
    /// (herald service name, base URL) pairs for herald's `[services]` config.
    pub fn services(&self) -> Vec<(String, String)> {
        let shop = SHOP_SERVICES.iter().map(|s| (s.to_string(), self.shop_url.clone()));
        let account = ACCOUNT_SERVICES.iter().map(|s| (s.to_string(), self.account_url.clone()));
        shop.chain(account).collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
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
    let app = app.fallback(|| async { Problem::not_found() });
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

/// A readable unique id such as `res_000042`.
fn new_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}_{:06}", NEXT.fetch_add(1, Ordering::Relaxed))
}
