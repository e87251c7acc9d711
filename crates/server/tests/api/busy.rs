//! herald's own refusals cost nothing: a service that cannot be reached
//! makes its steps wait, spending no attempt, and they finish once it is
//! back; a service that hangs holds only its own bulkhead, so steps of
//! other services keep their pace.

use std::time::Duration;

use herald_server::config::ServiceConfig;
use serde_json::json;

use crate::helpers::{Reply, StepService, event_types, eventually, free_port, spawn_app_with, step};

const ERASE: &str = r#"
name = "erase"
label = "Erasing your data"
expected_within = "5s"
[[steps]]
name = "first"
call = { service = "svc", path = "/first" }
[[steps]]
name = "audit"
label = "Erasing your audit records"
call = { service = "audit", path = "/erase" }
retry = { attempts = 2, initial = "50ms", max = "100ms" }
on_failure = "hold"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_refusing_connections_for_30_s_spends_no_attempt_and_every_operation_finishes_after() {
    let svc = StepService::start().await;
    let port = free_port(); // nothing listens there: connections are refused
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[ERASE], &svc, |c| {
        c.services.insert("audit".into(), ServiceConfig::new(vec![format!("http://127.0.0.1:{port}")]));
    })
    .await;
    let down_since = tokio::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(app.start_id("erase", json!({ "n": i })).await);
    }

    // Down: every operation waits for the audit service, told so.
    for id in &ids {
        app.wait_for(id, Duration::from_secs(10), |op| step(op, "audit")["status"] == "waiting").await;
    }
    // Kept down for 30 s (this is the outage, not a wait for a condition).
    tokio::time::sleep_until(down_since + Duration::from_secs(30)).await;
    for id in &ids {
        let op = app.get(id).await;
        let audit = step(&op, "audit");
        assert_eq!((audit["status"].as_str(), audit["attempts"].as_u64()), (Some("waiting"), Some(0)), "{op:#}");
        assert_eq!(audit["waiting_for"], "audit");
        assert_eq!(op["delayed"], true, "the user heard it is taking longer than usual");
        assert_eq!(op["needs_attention"], false);
    }
    let services = app.get_json("/v1/services").await;
    let audit = services["items"].as_array().unwrap().iter().find(|s| s["name"] == "audit").unwrap();
    assert_ne!(audit["circuit"]["state"], "closed", "its circuit opened: {audit}");

    // Back: every operation finishes, each audit step called once, one attempt each.
    let back = StepService::start_on(port).await;
    for id in &ids {
        let op = app.wait_for(id, Duration::from_secs(60), |op| op["status"] == "succeeded").await;
        let attempts = step(&op, "audit")["attempts"].as_u64().unwrap();
        let calls = back.calls("/erase").iter().filter(|c| c.key == format!("{id}/audit")).count() as u64;
        assert_eq!((attempts, calls), (1, 1), "attempts recorded = calls received: {op:#}");
        let told = event_types(&op).iter().filter(|t| *t == "step_waiting").count();
        assert_eq!(told, 1, "told it waits once, not once per check or probe: {op:#}");
    }
    let letters = app.get_json("/v1/dead-letters").await;
    assert_eq!(letters["items"].as_array().unwrap().len(), 0, "{letters}");
}

const SLOW: &str = r#"
name = "slow"
[[steps]]
name = "hang"
call = { service = "hang", path = "/hang" }
timeout = "3s"
retry = { attempts = 1 }
"#;

const QUICK: &str = r#"
name = "quick"
[[steps]]
name = "one"
call = { service = "svc", path = "/quick" }
[[steps]]
name = "two"
call = { service = "svc", path = "/quick" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_service_holds_only_its_own_bulkhead_and_other_services_keep_their_pace() {
    let svc = StepService::start().await;
    svc.on("/hang", Reply::Sleep(Duration::from_secs(30), Box::new(Reply::Json(json!({})))));
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[SLOW, QUICK], &svc, |c| {
        c.engine.max_in_flight = 16;
        let mut hang = ServiceConfig::new(vec![svc.url.clone()]);
        hang.max_in_flight = Some(4);
        c.services.insert("hang".into(), hang);
    })
    .await;
    for i in 0..40 {
        app.start_id("slow", json!({ "n": i })).await;
    }
    let hanging = async || (svc.calls("/hang").len() >= 4).then_some(());
    eventually("the hanging service was called", Duration::from_secs(10), hanging).await;

    let mut quick = Vec::new();
    for i in 0..20 {
        quick.push(app.start_id("quick", json!({ "n": i })).await);
    }
    for id in &quick {
        app.wait_for(id, Duration::from_secs(10), |op| op["status"] == "succeeded").await;
    }
    // They all finished while the hanging calls still hung: none of those
    // has reached its timeout, so none gave its place up to them.
    let failed = app.get_json("/v1/operations?workflow=slow&status=failed").await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 0, "other services kept their pace");
    assert_eq!(svc.calls("/hang").len(), 4, "the hanging service got its bulkhead's worth, no more");
}
