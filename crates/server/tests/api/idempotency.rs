use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn the_same_key_and_body_return_the_same_operation_and_another_body_is_refused() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    let start = |body: Value| {
        app.http.post(app.url("/v1/workflows/order/operations")).header("idempotency-key", "k-1").json(&body).send()
    };

    let first: Value = start(json!({"n": 1})).await.unwrap().json().await.unwrap();
    let again = start(json!({"n": 1})).await.unwrap();
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);

    let other = start(json!({"n": 2})).await.unwrap();
    assert_eq!(other.status(), 422);
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["type"], "urn:herald:problem:idempotency-key-reused");
    assert_eq!(problem["operation_id"], first["id"]);

    app.wait_final(first["id"].as_str().unwrap()).await;
    assert_eq!(svc.calls("/a").len(), 1);
}

#[tokio::test]
async fn concurrent_duplicates_create_exactly_one_operation() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    let url = app.url("/v1/workflows/order/operations");

    let requests = (0..25).map(|_| {
        let (http, url) = (app.http.clone(), url.clone());
        tokio::spawn(async move {
            let r = http.post(url).header("idempotency-key", "same").json(&json!({"x": 1})).send().await.unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        })
    });
    let ids: Vec<String> = futures::future::join_all(requests).await.into_iter().map(Result::unwrap).collect();

    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let list: Value = app.http.get(app.url("/v1/operations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}
