//! herald on a PostgreSQL store (`store = "postgres://…"`): an operation
//! runs as on the embedded one, and nodes on one database share the
//! instances registered through any of them and the changes to an inbox
//! made on any of them. Needs a server; see
//! `herald_store::contract::postgres`. (`api_postgres` runs the rest of
//! these tests on PostgreSQL; these, on nodes of their own, run here only.)

use std::time::Duration;

use herald_server::config::JwtAlgorithm;
use herald_store::contract::postgres::TestSchema;
use herald_testkit::eventually;
use serde_json::{Value, json};

use crate::{
    auth::{fresh_client, secured_with, start_for, user},
    helpers::*,
    inbox::{Changes, mark},
};

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

#[tokio::test]
async fn a_published_event_reaches_a_waiting_pull_subscription_on_a_postgres_store() {
    let schema = TestSchema::new().await;
    let url = schema.url();
    let app =
        spawn_app_with(tempfile::tempdir().unwrap(), &[], &StepService::start().await, |c| c.store = Some(url)).await;
    assert_eq!(app.put_subscription("audit", json!({"topic": "orders"})).await.status(), 201);

    // A long poll, waiting before anything is published: the publish wakes it.
    let waiting = {
        let (http, url) = (app.http.clone(), app.url("/v1/subscriptions/audit:pull"));
        tokio::spawn(async move { http.post(url).json(&json!({"wait": "5s"})).send().await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let first = app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({"partitionkey": "alice"}))).await;
    let again = app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({}))).await;

    assert_eq!(first.status(), 200);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["events"][0]["duplicate"], true, "a repeat is stored once");
    let pulled: serde_json::Value = waiting.await.unwrap().json().await.unwrap();
    let messages = pulled["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{pulled}");
    assert_eq!((messages[0]["event"]["id"].as_str(), messages[0]["attempt"].as_u64()), (Some("e1"), Some(1)));
    let acked: serde_json::Value =
        app.consume("audit", "ack", json!({"ack_ids": [messages[0]["ack_id"]]})).await.json().await.unwrap();
    assert_eq!(acked["acked"], 1);
    let stats = app.stats("audit").await;
    assert_eq!((stats["pending"].as_u64(), stats["in_flight"].as_u64()), (Some(0), Some(0)));
}

/// Two nodes on one database, which let instances register on loopback,
/// polling too rarely to matter: what one node's watchers learn of the
/// other's work comes from hints.
async fn two_nodes(schema: &TestSchema, workflows: &[&str], svc: &StepService) -> (TestApp, TestApp) {
    let node = || {
        spawn_app_with(tempfile::tempdir().unwrap(), workflows, svc, |c| {
            c.store = Some(schema.url());
            c.engine.poll_interval = herald_core::Span::from_millis(60_000);
            c.registry.allow = vec!["127.0.0.1".into()];
        })
    };
    (node().await, node().await)
}

#[tokio::test]
async fn a_watcher_on_one_node_sees_every_step_another_node_runs_and_resumes_on_either() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    svc.on("/b", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let (a, b) = two_nodes(&schema, &[&sequential("order", &["a", "b", "c"], "")], &svc).await;

    let id = b.start_id("order", json!({})).await;
    let on_a = |after: Option<u64>| {
        let mut req = a.http.get(a.url(&format!("/v1/operations/{id}/events")));
        if let Some(n) = after {
            req = req.header("last-event-id", n.to_string());
        }
        req.send()
    };
    let live = tokio::spawn(crate::sse::read_events(on_a(None).await.unwrap(), usize::MAX));
    // Up to `b` being called, seen on A while B runs it.
    let first = crate::sse::read_events(on_a(None).await.unwrap(), 5).await;
    assert_eq!(first.last().unwrap()["type"], "step_started", "{first:?}");

    gate.add_permits(1);
    // The rest, resumed on B itself after what A showed.
    let rest = crate::sse::read_events(
        b.http.get(b.url(&format!("/v1/operations/{id}/events"))).header("last-event-id", "5").send().await.unwrap(),
        usize::MAX,
    )
    .await;
    let seqs: Vec<u64> = rest.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (6..6 + seqs.len() as u64).collect::<Vec<_>>(), "no gap, no duplicate");
    assert_eq!(rest.last().unwrap()["type"], "succeeded");

    // The watcher that stayed on A saw it all, in order, once.
    let all = live.await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(all.last().unwrap()["type"], "succeeded");
    assert_eq!(all.len(), 5 + rest.len());
}

#[tokio::test]
async fn a_pull_waiting_on_one_node_is_woken_by_a_publish_on_another() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    let (a, b) = two_nodes(&schema, &[&sequential("order", &["a"], "")], &svc).await;
    assert_eq!(b.put_subscription("audit", json!({"topic": "orders"})).await.status(), 201);

    let waiting = {
        let (http, url) = (a.http.clone(), a.url("/v1/subscriptions/audit:pull"));
        tokio::spawn(async move {
            let asked = std::time::Instant::now();
            let resp = http.post(url).json(&json!({"wait": "20s"})).send().await.unwrap();
            (resp.json::<serde_json::Value>().await.unwrap(), asked.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(b.publish("orders", &cloud_event("e1", "OrderPlaced", json!({}))).await.status(), 200);

    let (pulled, took) = waiting.await.unwrap();
    assert_eq!(pulled["messages"][0]["event"]["id"], "e1", "{pulled}");
    assert!(took < std::time::Duration::from_secs(10), "woken by node b's hint, not its wait running out: {took:?}");
}

/// Registers `id` of `inventory` at `url` through `app`, for `ttl`.
async fn register(app: &TestApp, id: &str, url: &str, ttl: &str) -> u16 {
    let put = app.http.put(app.url(&format!("/v1/services/inventory/instances/{id}")));
    put.json(&json!({ "url": url, "ttl": ttl })).send().await.unwrap().status().as_u16()
}

/// The status of a gateway request to `inventory` through `app`.
async fn through(app: &TestApp, path: &str) -> u16 {
    app.http.get(app.url(&format!("/gw/inventory{path}"))).send().await.unwrap().status().as_u16()
}

/// Waits until a gateway request through `app` answers `status`.
async fn until_gateway_answers(app: &TestApp, status: u16, what: &str) {
    eventually(what, Duration::from_secs(10), || async { (through(app, "/stock").await == status).then_some(()) })
        .await;
}

/// Two nodes on a schema of their own, and an instance `i-1` of
/// `inventory` registered through the first for an hour, once the second
/// routes to it: (the schema, the instance, the first node, the second).
async fn registered_through_one_of_two() -> (TestSchema, StepService, TestApp, TestApp) {
    let schema = TestSchema::new().await;
    let (svc, instance) = (StepService::start().await, StepService::start().await);
    let (a, b) = two_nodes(&schema, &[], &svc).await;
    assert_eq!(register(&a, "i-1", &instance.url, "1h").await, 201);
    assert_eq!(through(&a, "/stock").await, 200, "the node that took it routes to it at once");
    until_gateway_answers(&b, 200, "the other node routes to the instance").await;
    (schema, instance, a, b)
}

#[tokio::test]
async fn an_instance_registered_through_one_node_is_routed_to_by_another_until_deregistered() {
    let (_schema, instance, a, b) = registered_through_one_of_two().await;

    assert!(!instance.calls("/stock").is_empty());
    let listed = b.get_json("/v1/services").await;
    let inventory = listed["items"].as_array().unwrap().iter().find(|s| s["name"] == "inventory").unwrap().clone();
    assert_eq!(inventory["instances"][0]["id"], "i-1", "{listed}");
    assert_eq!(register(&b, "i-1", &instance.url, "1h").await, 200, "a heartbeat through either node renews it");

    let gone = a.http.delete(a.url("/v1/services/inventory/instances/i-1")).send().await.unwrap();
    assert_eq!(gone.status(), 204);

    until_gateway_answers(&b, 503, "the other node stops routing to the deregistered instance").await;
    assert_eq!(through(&a, "/stock").await, 503);
}

#[tokio::test]
async fn an_instance_whose_ttl_passes_without_a_heartbeat_goes_from_every_node() {
    let (_schema, instance, a, other) = registered_through_one_of_two().await;

    // The last heartbeat: 1 s more, then none.
    assert_eq!(register(&a, "i-1", &instance.url, "1s").await, 200);

    until_gateway_answers(&other, 503, "the TTL's end is seen by the other node").await;
    until_gateway_answers(&a, 503, "and by the node that took the registration").await;
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

#[tokio::test]
async fn an_inbox_stream_on_one_node_hears_the_changes_another_node_makes() {
    let schema = TestSchema::new().await;
    // Polling too rarely to matter: what A's stream learns comes from hints.
    let node = || {
        secured_with(JwtAlgorithm::HS256, |c| {
            c.store = Some(schema.url());
            c.engine.poll_interval = herald_core::Span::from_millis(60_000);
        })
    };
    let ((a, _), (b, _)) = (node().await, node().await);
    let alice = user("alice");

    let mut on_a = Changes::new(
        fresh_client().get(a.url("/v1/me/notifications/stream")).bearer_auth(&alice).send().await.unwrap(),
    );
    let id = start_for(&b, "alice").await;
    let mut last = Value::Null;
    while last["status"] != "succeeded" {
        last = on_a.next(1).await.remove(0)["notification"].clone();
        assert_eq!(last["operation_id"], id.as_str());
    }
    // Read on B: A's stream hears that too.
    let nid = last["id"].as_str().unwrap().to_string();
    assert_eq!(mark(&b, &format!("/v1/me/notifications/{nid}:read"), &alice).await.status(), 200);
    let read = on_a.next(1).await.remove(0);
    assert_eq!((read["notification"]["read"].clone(), read["unread"].clone()), (Value::Bool(true), 0.into()));
}
