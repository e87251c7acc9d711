//! Instances registered at run time are stored: they outlive a restart of
//! the server within their TTL.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_registered_instance_is_routed_to_after_a_restart_within_its_ttl() {
    let (svc, instance) = (StepService::start().await, StepService::start().await);
    let allow = |c: &mut herald_server::Config| c.registry.allow = vec!["127.0.0.1".into()];
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[], &svc, allow).await;
    let put = app.http.put(app.url("/v1/services/inventory/instances/i-1"));
    let put = put.json(&json!({ "url": instance.url, "ttl": "1h", "metadata": { "zone": "eu" } })).send().await;
    assert_eq!(put.unwrap().status(), 201);
    let dir = app.stop().await;

    let app = spawn_app_with(dir, &[], &svc, allow).await;

    let listed = app.get_json("/v1/services").await;
    let inventory = listed["items"].as_array().unwrap().iter().find(|s| s["name"] == "inventory").cloned();
    let instances = inventory.expect("the service is back")["instances"].clone();
    assert_eq!((instances[0]["id"].as_str(), instances[0]["metadata"]["zone"].as_str()), (Some("i-1"), Some("eu")));
    assert!(instances[0]["expires_in_ms"].as_u64().unwrap() > 3_500_000, "its stored expiry: {instances}");
    let routed = app.http.get(app.url("/gw/inventory/stock")).send().await.unwrap();
    assert_eq!(routed.status(), 200);
    assert_eq!(instance.calls("/stock").len(), 1);
}

#[tokio::test]
async fn an_id_of_a_configured_instance_is_not_registered_and_changes_nothing() {
    let svc = StepService::start().await;
    let allow = |c: &mut herald_server::Config| c.registry.allow = vec!["127.0.0.1".into()];
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[], &svc, allow).await;
    let ids = || async {
        let services = app.get_json("/v1/services").await;
        let svc = services["items"].as_array().unwrap().iter().find(|s| s["name"] == "svc").cloned().unwrap();
        svc["instances"].as_array().unwrap().iter().map(|i| (i["id"].clone(), i["url"].clone())).collect::<Vec<_>>()
    };
    let before = ids().await;
    assert_eq!(before.len(), 1, "{before:?}");
    let put = app.http.put(app.url("/v1/services/svc/instances/config-0"));
    let put = put.json(&json!({ "url": "http://127.0.0.1:9" })).send().await.unwrap();
    assert_eq!(put.status(), 422);
    let problem: serde_json::Value = put.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("configuration"), "{problem}");
    assert_eq!(ids().await, before, "the configured instance is as it was, alone");
}
