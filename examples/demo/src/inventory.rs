//! The inventory: the first step of `place-order` (reserve the items) and
//! its compensation (release them), on a SQLite database of its own, so
//! stock and holds outlive a restart.
//!
//! Each call is one transaction: it claims the `Idempotency-Key` in the
//! SDK's inbox (a repeat gets the kept reply), changes stock and holds,
//! adds an `ItemsReserved` / `ItemsReleased` event to the SDK's outbox and
//! keeps the reply. The outbox's relay then publishes the event to herald's
//! topic `inventory`: only once it is committed, and even after a crash.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use herald_sdk::{
    Client, CloudEvent, Inbox, Outbox, Relay, RelayHandle,
    step::{Envelope, StepCall, StepReply},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{
    SqliteConnection, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode},
};

use crate::{
    catalog::{CATALOG, Item, as_items, totals},
    lock,
    step::{log, pace, refuse},
};

/// The file under the data directory.
const DATABASE: &str = "demo-shop.db";
/// The herald topic the inventory's events go to.
pub const TOPIC: &str = "inventory";
const SOURCE: &str = "/demo/inventory";

const TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reservations (id INTEGER PRIMARY KEY AUTOINCREMENT, operation_id TEXT NOT NULL)",
    // What each operation holds, so the release needs only the envelope.
    "CREATE TABLE IF NOT EXISTS holds (
        operation_id TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL, PRIMARY KEY (operation_id, sku))",
];

#[derive(Debug)]
pub struct Inventory {
    pool: SqlitePool,
    pace: Duration,
    relay: Arc<Announcer>,
}

/// The relay that publishes the outbox, once herald's address is known
/// (herald is built after the apps it calls). Shared by the inventory,
/// which wakes it after each commit, and the [`Demo`](crate::Demo).
pub struct Announcer {
    pool: SqlitePool,
    relay: Mutex<Option<RelayHandle>>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if lock(&self.relay).is_some() { "Announcer(running)" } else { "Announcer(idle)" })
    }
}

impl Announcer {
    /// Starts publishing the outbox to herald at `herald_url`, in place of
    /// any relay started before.
    pub fn start(&self, herald_url: &str) {
        let handle = Relay::new(self.pool.clone(), Client::new(herald_url)).spawn();
        *lock(&self.relay) = Some(handle);
    }

    fn wake(&self) {
        if let Some(relay) = lock(&self.relay).as_ref() {
            relay.wake();
        }
    }

    /// Stops the relay; what it has not published stays in the outbox.
    pub fn stop(&self) {
        lock(&self.relay).take();
    }
}

/// Why a change stopped: a reply for the caller (kept in the inbox), or a
/// database failure (rolled back; herald tries again).
enum Stop {
    Reply(StepReply),
    Database(herald_sdk::Error),
}

impl From<StepReply> for Stop {
    fn from(reply: StepReply) -> Self {
        Stop::Reply(reply)
    }
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Stop::Database(e.into())
    }
}

impl From<herald_sdk::Error> for Stop {
    fn from(e: herald_sdk::Error) -> Self {
        Stop::Database(e)
    }
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Reserve,
    Release,
}

#[derive(Debug, Deserialize)]
struct Basket {
    items: Vec<Item>,
}

impl Inventory {
    /// Opens (or creates) the database in `data_dir`, its tables and the
    /// outbox's, and puts the catalogue on the shelf where a sku has no row
    /// yet, so stock carries over from the last run.
    pub async fn open(data_dir: &Path, pace: Duration) -> anyhow::Result<Self> {
        let path = data_dir.join(DATABASE);
        private(data_dir, &path).with_context(|| format!("creating {}", path.display()))?;
        // WAL: the stock view and the relay read while a reserve writes.
        let options =
            SqliteConnectOptions::new().filename(&path).create_if_missing(true).journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePool::connect_with(options).await.with_context(|| format!("opening {}", path.display()))?;
        for sql in TABLES {
            sqlx::query(sql).execute(&pool).await.context("creating the inventory's tables")?;
        }
        Outbox::create_tables(&pool).await.context("creating the outbox's tables")?;
        for (sku, _, stock) in CATALOG {
            sqlx::query("INSERT INTO stock (sku, on_hand) VALUES ($1, $2) ON CONFLICT (sku) DO NOTHING")
                .bind(sku)
                .bind(i64::from(stock))
                .execute(&pool)
                .await
                .context("stocking the shelves")?;
        }
        let relay = Arc::new(Announcer { pool: pool.clone(), relay: Mutex::default() });
        Ok(Inventory { pool, pace, relay })
    }

    pub fn announcer(&self) -> Arc<Announcer> {
        self.relay.clone()
    }

    async fn handle(&self, change: Change, call: StepCall) -> StepReply {
        pace(self.pace, &call.envelope).await;
        let reply = match self.transact(change, &call).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(key = %call.key, error = %e, "the inventory's database failed; herald will retry");
                StepReply::retry(crate::words::Lang::of(&call.envelope).inventory_away())
            }
        };
        log(&call.key, &call.envelope, &reply);
        reply
    }

    async fn transact(&self, change: Change, call: &StepCall) -> herald_sdk::Result<StepReply> {
        // IMMEDIATE: take SQLite's write lock now, so a duplicate racing
        // this call waits at its claim and then reads the kept reply.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(kept) = Inbox::claim(&mut *tx, &call.key).await? {
            tracing::debug!(key = %call.key, "repeated key: replaying the kept reply");
            return Ok(kept);
        }
        let done = match change {
            Change::Reserve => reserve(&mut tx, call).await,
            Change::Release => release(&mut tx, call).await,
        };
        let reply = match done {
            Ok(result) => StepReply::Done(result),
            Err(Stop::Reply(reply)) => reply,
            Err(Stop::Database(e)) => return Err(e),
        };
        Inbox::keep(&mut *tx, &call.key, &reply).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(reply)
    }
}

/// Holds the basket's items for the operation, all or nothing.
async fn reserve(conn: &mut SqliteConnection, call: &StepCall) -> Result<Value, Stop> {
    let env = &call.envelope;
    let Basket { items } = env.input()?;
    let lang = crate::words::Lang::of(env);
    let wanted = totals(&items, lang)?;
    // Check everything before taking anything: a refusal changes nothing.
    for (sku, qty) in &wanted {
        let on_hand: i64 = sqlx::query_scalar("SELECT on_hand FROM stock WHERE sku = $1")
            .bind(sku)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0);
        if on_hand < i64::from(*qty) {
            let detail = if on_hand <= 0 { lang.sold_out(sku) } else { lang.only_left(on_hand, sku) };
            return Err(refuse(StatusCode::CONFLICT, detail).into());
        }
    }
    for (sku, qty) in &wanted {
        sqlx::query("UPDATE stock SET on_hand = on_hand - $2 WHERE sku = $1")
            .bind(sku)
            .bind(i64::from(*qty))
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO holds (operation_id, sku, qty) VALUES ($1, $2, $3)
             ON CONFLICT (operation_id, sku) DO UPDATE SET qty = qty + excluded.qty",
        )
        .bind(&env.operation_id)
        .bind(sku)
        .bind(i64::from(*qty))
        .execute(&mut *conn)
        .await?;
    }
    let id: i64 = sqlx::query_scalar("INSERT INTO reservations (operation_id) VALUES ($1) RETURNING id")
        .bind(&env.operation_id)
        .fetch_one(&mut *conn)
        .await?;
    let reservation = format!("res_{id:06}");
    let items = as_items(&wanted);
    let data = json!({ "operation_id": env.operation_id, "reservation": reservation, "items": items });
    Outbox::enqueue_traced(&mut *conn, TOPIC, &event("ItemsReserved", call, data)?, call.traceparent.as_deref())
        .await?;
    Ok(json!({ "reservation": reservation, "items": items }))
}

/// Puts back whatever the operation holds. Nothing held (the reserve never
/// went through) is a successful, empty release, and announces nothing.
async fn release(conn: &mut SqliteConnection, call: &StepCall) -> Result<Value, Stop> {
    let env = &call.envelope;
    let held: Vec<(String, i64)> = sqlx::query_as("SELECT sku, qty FROM holds WHERE operation_id = $1 ORDER BY sku")
        .bind(&env.operation_id)
        .fetch_all(&mut *conn)
        .await?;
    for (sku, qty) in &held {
        sqlx::query(
            "INSERT INTO stock (sku, on_hand) VALUES ($1, $2)
             ON CONFLICT (sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand",
        )
        .bind(sku)
        .bind(qty)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM holds WHERE operation_id = $1").bind(&env.operation_id).execute(&mut *conn).await?;
    let items: Vec<Value> = held.iter().map(|(sku, qty)| json!({ "sku": sku, "qty": qty })).collect();
    if !items.is_empty() {
        let data = json!({ "operation_id": env.operation_id, "items": items });
        let event = event("ItemsReleased", call, data)?;
        Outbox::enqueue_traced(&mut *conn, TOPIC, &event, call.traceparent.as_deref()).await?;
    }
    Ok(json!({ "released": items }))
}

/// The event announcing a change. Its id is the call's idempotency key, the
/// same on every attempt, so herald stores it once even if the relay
/// publishes it twice.
fn event(kind: &str, call: &StepCall, data: Value) -> Result<CloudEvent, Stop> {
    let env: &Envelope = &call.envelope;
    let subject = env.subject.clone().or_else(|| env.input.get("customer").and_then(Value::as_str).map(str::to_string));
    CloudEvent::from_json(json!({
        "specversion": "1.0",
        "id": call.key,
        "source": SOURCE,
        "type": kind,
        "subject": subject,
        "time": chrono::Utc::now().to_rfc3339(),
        "datacontenttype": "application/json",
        "data": data,
    }))
    .map_err(|e| Stop::Database(herald_sdk::Error::Decode(format!("the {kind} event: {e}"))))
}

pub fn router(inventory: Inventory) -> Router {
    let inventory = Arc::new(inventory);
    Router::new()
        .route(
            "/inventory/reserve",
            post(|State(inv): State<Arc<Inventory>>, call: StepCall| async move { inv.handle(Change::Reserve, call).await }),
        )
        .route(
            "/inventory/release",
            post(|State(inv): State<Arc<Inventory>>, call: StepCall| async move { inv.handle(Change::Release, call).await }),
        )
        .route("/inventory/stock", get(stock))
        .with_state(inventory)
}

/// Sets a sku's stock in the inventory kept in `data_dir` (the demo
/// running or not), as a delivery would: for runs that sell more than the
/// catalogue's starting stock.
pub async fn restock(data_dir: &Path, sku: &str, on_hand: i64) -> anyhow::Result<()> {
    let path = data_dir.join(DATABASE);
    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let set = sqlx::query("UPDATE stock SET on_hand = $2 WHERE sku = $1").bind(sku).bind(on_hand).execute(&pool).await;
    pool.close().await;
    anyhow::ensure!(set?.rows_affected() == 1, "the shop does not sell {sku}");
    Ok(())
}

/// `GET /inventory/stock`: `{ "<sku>": <on hand> }`.
async fn stock(State(inv): State<Arc<Inventory>>) -> Result<Json<BTreeMap<String, i64>>, StepReply> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT sku, on_hand FROM stock ORDER BY sku")
        .fetch_all(&inv.pool)
        .await
        .map_err(|e| StepReply::retry(format!("The inventory cannot be read just now ({e}).")))?;
    Ok(Json(rows.into_iter().collect()))
}

/// The database sits in herald's data directory, which is its user's alone:
/// the directory made 0700 and the file 0600 before SQLite opens it (SQLite
/// gives its `-wal` and `-shm` the file's mode), whatever the umask.
fn private(dir: &Path, file: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    builder.create(dir)?;
    options.open(file).map(drop)
}
