//! herald on a PostgreSQL store (`store = "postgres://…"`): an operation
//! runs as on the embedded one. Needs a server; see
//! `herald_store::contract::postgres`.

use herald_store::contract::postgres::TestSchema;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_operation_runs_every_step_once_on_a_postgres_store() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    let url = schema.url();
    let workflow = sequential("order", &["reserve", "charge"], "");
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&workflow], &svc, |c| c.store = Some(url)).await;

    let id = app.start_id("order", json!({})).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "succeeded");
    assert_eq!((svc.calls("/reserve").len(), svc.calls("/charge").len()), (1, 1));
    assert!(event_types(&op).len() >= 4, "{op}");
}

/// A transition that deadlocks with another writer is the one PostgreSQL
/// rolls back (`Error::Raced`): herald runs it again, and the request
/// that made it succeeds instead of failing.
///
/// The other writer holds the event the cancel is about to append (an
/// uncommitted row at the operation's next sequence number); once the
/// cancel waits on it, holding the operation's row, the writer asks for
/// that row too. The cancel, waiting longest, is the one PostgreSQL's
/// deadlock check rolls back.
#[tokio::test]
async fn a_transition_that_deadlocks_with_another_writer_runs_again_and_succeeds() {
    use sqlx::{ConnectOptions, Connection};

    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    svc.on("/reserve", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let url = schema.url();
    let workflow = sequential("order", &["reserve"], "");
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&workflow], &svc, |c| c.store = Some(url)).await;
    let id = app.start_id("order", json!({})).await;
    app.wait_for(&id, std::time::Duration::from_secs(10), |op| step(op, "reserve")["status"] == "running").await;

    let mut writer = schema.options().connect().await.unwrap();
    let writer_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut writer).await.unwrap();
    let mut tx = writer.begin().await.unwrap();
    let next: i64 = sqlx::query_scalar("SELECT MAX(seq) + 1 FROM events WHERE op_id = $1")
        .bind(&id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO events (op_id, seq, body) VALUES ($1, $2, '{}')")
        .bind(&id)
        .bind(next)
        .execute(&mut *tx)
        .await
        .unwrap();
    let cancel = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url(&format!("/v1/operations/{id}:cancel")));
        async move { http.post(url).json(&json!({ "reason": "raced" })).send().await.unwrap().status() }
    });
    let watcher = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(schema.options()).await.unwrap();
    herald_testkit::eventually("the cancel waits on the writer's event", std::time::Duration::from_secs(10), || {
        let watcher = &watcher;
        async move {
            let blocked: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))")
                    .bind(writer_pid)
                    .fetch_one(watcher)
                    .await
                    .unwrap();
            (blocked > 0).then_some(())
        }
    })
    .await;

    // The cycle: PostgreSQL rolls one side back after its deadlock_timeout.
    let locked = sqlx::query("SELECT 1 FROM operations WHERE id = $1 FOR UPDATE").bind(&id).execute(&mut *tx).await;
    assert!(locked.is_ok(), "the writer, which waited least, is not the one rolled back: {locked:?}");
    tx.rollback().await.unwrap();

    assert_eq!(cancel.await.unwrap(), 202, "the cancel ran again after losing the deadlock, and was applied");
    gate.add_permits(1);
    let op = app.wait_final(&id).await;
    assert_eq!(op["status"], "cancelled", "{op}");
}
