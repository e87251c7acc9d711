//! herald on a PostgreSQL store (`store = "postgres://…"`): an operation
//! runs as on the embedded one, and nodes on one database share the
//! instances registered through any of them. Needs a server; see
//! `herald_store::contract::postgres`.

use std::time::Duration;

use herald_store::contract::postgres::TestSchema;
use herald_testkit::eventually;
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

/// Two herald nodes on one schema, which let instances register on loopback.
async fn two_nodes(schema: &TestSchema, svc: &StepService) -> (TestApp, TestApp) {
    let node = || {
        let url = schema.url();
        spawn_app_with(tempfile::tempdir().unwrap(), &[], svc, move |c| {
            c.store = Some(url);
            c.registry.allow = vec!["127.0.0.1".into()];
        })
    };
    (node().await, node().await)
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
    let (a, b) = two_nodes(&schema, &svc).await;
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
