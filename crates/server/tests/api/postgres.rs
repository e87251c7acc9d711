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
