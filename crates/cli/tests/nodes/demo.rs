//! `herald demo --store postgres://…`: the demo's two stories on a shared
//! database, the order's announcement on a PostgreSQL topic included.

use std::time::Duration;

use herald_store::contract::postgres::TestSchema;
use herald_testkit::{
    client_within, eventually,
    process::{Serve, demo},
};
use serde_json::{Value, json};

#[tokio::test]
async fn the_demo_runs_both_stories_on_postgres() {
    let schema = TestSchema::new().await;
    let data = tempfile::tempdir().unwrap();
    let (store, data_dir) = (schema.url(), data.path().join("data"));
    let log = data.path().join("demo.log");
    // herald picks its own port and says which in its banner.
    let (_demo, base) = tokio::task::spawn_blocking(move || {
        let how = Serve::Demo { pace: "0ms", data_dir: &data_dir, store: Some(&store), config: None };
        demo(env!("CARGO_BIN_EXE_herald"), how, &log)
    })
    .await
    .unwrap();

    let http = client_within(Duration::from_secs(30));
    let start = |workflow: &'static str, input: Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http.post(format!("{base}/v1/workflows/{workflow}/operations")).json(&input).send().await.unwrap();
            assert_eq!(r.status(), 202, "{workflow}");
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        }
    };
    let order = start(
        "place-order",
        json!({"customer": "alice", "items": [{"sku": "tea", "qty": 1}], "card": "4242424242424242"}),
    )
    .await;
    let deletion = start("delete-account", json!({"user_id": "bob", "email": "bob@example.com"})).await;
    for id in [order, deletion] {
        let op: Value = eventually(&format!("{id} succeeds"), Duration::from_secs(60), || {
            let (http, url) = (http.clone(), format!("{base}/v1/operations/{id}"));
            async move {
                let op: Value = http.get(url).send().await.ok()?.json().await.ok()?;
                (op["status"] == "succeeded").then_some(op)
            }
        })
        .await;
        assert_eq!(op["status"], "succeeded", "{op}");
    }
}
