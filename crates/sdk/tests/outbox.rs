//! The transactional outbox on SQLite and PostgreSQL against a real
//! herald: committed events are published in order, rolled-back ones never
//! are, and a service killed between its commit and the publish publishes
//! after it restarts.

mod common;

use std::{str::FromStr, time::Duration};

use common::{child, event, herald, wait_for_line};
use herald_sdk::{Client, Outbox, Relay};
use serde_json::json;
use sqlx::{PgPool, SqlitePool, postgres::PgConnectOptions, sqlite::SqliteConnectOptions};

/// PostgreSQL on this machine (trust auth, database `test`); override with HERALD_TEST_POSTGRES.
fn postgres_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A pool on a schema of its own, so tests share the database without
/// meeting; the schema is dropped with [`drop_schema`].
async fn postgres() -> (PgPool, String) {
    let admin = PgPool::connect(&postgres_url()).await.expect("PostgreSQL at HERALD_TEST_POSTGRES or 127.0.0.1:5432");
    let schema = format!("herald_sdk_{:016x}", rand::random::<u64>());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
    let opts = PgConnectOptions::from_str(&postgres_url()).unwrap().options([("search_path", schema.as_str())]);
    (PgPool::connect_with(opts).await.unwrap(), schema)
}

async fn drop_schema(pool: PgPool, schema: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&pool).await.unwrap();
}

async fn sqlite(path: &std::path::Path) -> SqlitePool {
    let opts = SqliteConnectOptions::new().filename(path).create_if_missing(true);
    SqlitePool::connect_with(opts).await.unwrap()
}

/// A herald with a pull subscription `inventory` on the topic `inventory`.
async fn herald_with_subscription() -> (common::Herald, Client) {
    let h = herald(&[], &[]).await;
    let client = Client::new(&h.base);
    let resp = reqwest::Client::new()
        .put(format!("{}/v1/subscriptions/inventory", h.base))
        .json(&json!({"topic": "inventory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    (h, client)
}

async fn received(client: &Client) -> Vec<String> {
    let messages = client.pull("inventory", 100, Duration::from_millis(200)).await.unwrap();
    let ids: Vec<String> = messages.iter().map(|m| m.event.id.clone()).collect();
    let acks: Vec<String> = messages.into_iter().map(|m| m.ack_id).collect();
    if !acks.is_empty() {
        client.ack("inventory", &acks).await.unwrap();
    }
    ids
}

#[tokio::test]
async fn sqlite_committed_events_go_out_in_order_and_rolled_back_ones_never() {
    let (_h, client) = herald_with_subscription().await;
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlite(&dir.path().join("shop.db")).await;
    Outbox::create_tables(&pool).await.unwrap();
    sqlx::query("CREATE TABLE stock (sku TEXT PRIMARY KEY, held INTEGER)").execute(&pool).await.unwrap();

    for i in 0..5 {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO stock VALUES ($1, 1)").bind(format!("sku-{i}")).execute(&mut *tx).await.unwrap();
        Outbox::enqueue(&mut *tx, "inventory", &event(&format!("held-{i}"), "ItemsHeld")).await.unwrap();
        tx.commit().await.unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    Outbox::enqueue(&mut *tx, "inventory", &event("never", "ItemsHeld")).await.unwrap();
    tx.rollback().await.unwrap();
    let relay = Relay::new(pool.clone(), client.clone());
    let published = relay.publish_pending().await.unwrap();

    assert_eq!(published, 5);
    assert_eq!(received(&client).await, ["held-0", "held-1", "held-2", "held-3", "held-4"]);
    assert_eq!(relay.publish_pending().await.unwrap(), 0, "marked sent: nothing goes out twice");
}

#[tokio::test]
async fn a_row_keeps_the_span_its_event_was_made_in_and_the_relay_publishes_it() {
    let (_h, client) = herald_with_subscription().await;
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlite(&dir.path().join("shop.db")).await;
    Outbox::create_tables(&pool).await.unwrap();
    let step_span = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut tx = pool.begin().await.unwrap();
    Outbox::enqueue_traced(&mut *tx, "inventory", &event("traced", "ItemsHeld"), Some(step_span)).await.unwrap();
    Outbox::enqueue_traced(&mut *tx, "inventory", &event("garbled", "ItemsHeld"), Some("00-xyz")).await.unwrap();
    Outbox::enqueue(&mut *tx, "inventory", &event("plain", "ItemsHeld")).await.unwrap();
    tx.commit().await.unwrap();
    // The context is in the row, whichever process relays it later.
    let kept: String =
        sqlx::query_scalar("SELECT event FROM herald_outbox ORDER BY seq LIMIT 1").fetch_one(&pool).await.unwrap();
    assert!(kept.contains(step_span), "{kept}");
    assert_eq!(Relay::new(pool.clone(), client.clone()).publish_pending().await.unwrap(), 3);

    let messages = client.pull("inventory", 100, Duration::from_millis(200)).await.unwrap();
    let carried: Vec<(String, Option<String>)> =
        messages.iter().map(|m| (m.event.id.clone(), m.event.extension("traceparent").map(str::to_string))).collect();
    assert_eq!(
        carried,
        [("traced".into(), Some(step_span.into())), ("garbled".into(), None), ("plain".into(), None)],
        "the stored context, as the consumer reads it"
    );
}

#[tokio::test]
async fn postgres_committed_events_go_out_in_order_and_rolled_back_ones_never() {
    let (_h, client) = herald_with_subscription().await;
    let (pool, schema) = postgres().await;
    Outbox::create_tables(&pool).await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    Outbox::enqueue(&mut *tx, "inventory", &event("a", "ItemsHeld")).await.unwrap();
    Outbox::enqueue(&mut *tx, "inventory", &event("b", "ItemsHeld")).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    Outbox::enqueue(&mut *tx, "inventory", &event("never", "ItemsHeld")).await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    Outbox::enqueue(&mut *tx, "inventory", &event("c", "ItemsHeld")).await.unwrap();
    tx.commit().await.unwrap();
    // Two relays at once (two replicas of the service): one publishes at a time.
    let (r1, r2) = (Relay::new(pool.clone(), client.clone()), Relay::new(pool.clone(), client.clone()));
    let (n1, n2) = tokio::join!(r1.publish_pending(), r2.publish_pending());
    let _ = r1.publish_pending().await.unwrap();

    assert!(n1.unwrap() + n2.unwrap() <= 3);
    assert_eq!(received(&client).await, ["a", "b", "c"], "once each, in commit order");
    drop_schema(pool, &schema).await;
}

/// The service as a child process: commits one event to its outbox and
/// waits to be killed, or (relay mode) publishes what its outbox holds.
#[tokio::test]
#[ignore = "a child process's entry point: run, with `--ignored`, by the test that spawns it"]
async fn outbox_child() {
    let Ok(mode) = std::env::var("HERALD_SDK_CHILD") else { return };
    let pool = sqlite(std::path::Path::new(&std::env::var("HERALD_SDK_DB").unwrap())).await;
    Outbox::create_tables(&pool).await.unwrap();
    match mode.as_str() {
        "commit" => {
            let mut tx = pool.begin().await.unwrap();
            Outbox::enqueue(&mut *tx, "inventory", &event("after-crash", "ItemsHeld")).await.unwrap();
            tx.commit().await.unwrap();
            println!("committed");
            std::future::pending::<()>().await;
        }
        _ => {
            let client = Client::new(std::env::var("HERALD_SDK_URL").unwrap());
            let n = Relay::new(pool, client).publish_pending().await.unwrap();
            println!("published {n}");
        }
    }
}

#[tokio::test]
async fn a_service_killed_between_its_commit_and_the_publish_publishes_after_it_restarts() {
    let (h, client) = herald_with_subscription().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("service.db").display().to_string();
    let env = |mode: &'static str| {
        [("HERALD_SDK_CHILD", mode), ("HERALD_SDK_DB", db.as_str()), ("HERALD_SDK_URL", h.base.as_str())]
    };

    let mut service = child("outbox_child", &env("commit"));
    let said = tokio::task::spawn_blocking(move || {
        let line = wait_for_line(&mut service, "committed");
        service.kill().unwrap(); // SIGKILL: no relay ever ran
        service.wait().unwrap();
        line
    })
    .await
    .unwrap();
    assert_eq!(said, "committed");
    assert!(received(&client).await.is_empty(), "killed before its relay published");

    let mut restarted = child("outbox_child", &env("relay"));
    let said = tokio::task::spawn_blocking(move || {
        let line = wait_for_line(&mut restarted, "published");
        assert!(restarted.wait().unwrap().success());
        line
    })
    .await
    .unwrap();

    assert_eq!(said, "published 1");
    assert_eq!(received(&client).await, ["after-crash"]);
}
