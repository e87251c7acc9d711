//! The demo apps over real HTTP, called the way herald calls them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

const ORDER: &str = "place-order";
const DELETION: &str = "delete-account";

fn client() -> reqwest::Client {
    // reqwest is built with `rustls-no-provider`: without a provider,
    // building a client panics, even for http:// URLs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn demo() -> herald_demo::Demo {
    herald_demo::start(Duration::ZERO).await.expect("the demo starts")
}

fn envelope(op: &str, workflow: &str, step: &str, phase: &str, input: Value, results: Value) -> Value {
    json!({
        "operation_id": op, "workflow": workflow, "step": step, "attempt": 1, "phase": phase,
        "subject": null, "input": input, "results": results, "callback": null,
    })
}

fn order(card: &str) -> Value {
    json!({ "customer": "alice", "items": [{ "sku": "tea", "qty": 1 }], "card": card })
}

fn user() -> Value {
    json!({ "user_id": "u_42", "email": "alice@example.com" })
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

async fn post(http: &reqwest::Client, url: String, key: &str, body: &Value) -> Answer {
    let resp = http
        .post(url)
        .header("idempotency-key", key)
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the demo answers");
    let status = resp.status();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = resp.json().await.expect("every answer is JSON");
    Answer { status, content_type, body }
}

async fn get(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.expect("the demo answers").json().await.expect("JSON")
}

#[tokio::test]
async fn a_declined_card_is_refused_with_a_problem_the_shopper_can_read() {
    let (demo, http) = (demo().await, client());
    let body = envelope("op_declined", ORDER, "charge-payment", "forward", order("4000000000000002"), json!({}));
    let a = post(&http, format!("{}/payment/charge", demo.shop_url), "op_declined/charge-payment", &body).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["detail"], "Your card was declined.");
    assert!(a.body["type"].is_string() && a.body["title"].is_string());
    let applied = get(&http, format!("{}/applied", demo.shop_url)).await;
    assert_eq!(applied, json!({}), "a declined charge applies nothing");
}

#[tokio::test]
async fn a_good_card_is_charged_for_the_items_and_refunded_on_compensation() {
    let (demo, http) = (demo().await, client());
    let body = envelope("op_pay", ORDER, "charge-payment", "forward", order("4242 4242 4242 4242"), json!({}));
    let a = post(&http, format!("{}/payment/charge", demo.shop_url), "op_pay/charge-payment", &body).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type, "application/json");
    assert_eq!(a.body["amount_cents"], 450);
    let results = json!({ "charge-payment": a.body });
    let undo = envelope("op_pay", ORDER, "charge-payment", "compensation", order("4242424242424242"), results);
    let r = post(&http, format!("{}/payment/refund", demo.shop_url), "op_pay/charge-payment/compensate", &undo).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["charge"], a.body["charge"]);
    assert_eq!(r.body["amount_cents"], 450);
}

#[tokio::test]
async fn a_repeated_idempotency_key_applies_the_work_once() {
    let (demo, http) = (demo().await, client());
    let url = format!("{}/inventory/reserve", demo.shop_url);
    let body = envelope("op_twice", ORDER, "reserve-inventory", "forward", order("4242424242424242"), json!({}));
    let key = "op_twice/reserve-inventory";
    let first = post(&http, url.clone(), key, &body).await;
    let second = post(&http, url.clone(), key, &body).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body, second.body, "the stored answer is replayed");
    assert!(first.body["reservation"].as_str().is_some_and(|r| r.starts_with("res_")));

    // Duplicates racing each other are applied once too.
    let racing = "op_race/reserve-inventory";
    let (a, b) = tokio::join!(post(&http, url.clone(), racing, &body), post(&http, url, racing, &body));
    assert_eq!(a.body, b.body);

    let applied = get(&http, format!("{}/applied", demo.shop_url)).await;
    assert_eq!(applied, json!({ key: 1, racing: 1 }));
}

#[tokio::test]
async fn releasing_puts_reserved_items_back_on_the_shelf() {
    let (demo, http) = (demo().await, client());
    let ten_kettles =
        json!({ "customer": "bob", "items": [{ "sku": "kettle", "qty": 10 }], "card": "4242424242424242" });
    let reserve = format!("{}/inventory/reserve", demo.shop_url);
    let body = envelope("op_a", ORDER, "reserve-inventory", "forward", ten_kettles.clone(), json!({}));
    assert_eq!(post(&http, reserve.clone(), "op_a/reserve-inventory", &body).await.status, StatusCode::OK);

    let one_more = json!({ "customer": "carol", "items": [{ "sku": "kettle", "qty": 1 }], "card": "4242424242424242" });
    let body = envelope("op_b", ORDER, "reserve-inventory", "forward", one_more.clone(), json!({}));
    let sold_out = post(&http, reserve.clone(), "op_b/reserve-inventory", &body).await;
    assert_eq!(sold_out.status, StatusCode::CONFLICT);
    assert_eq!(sold_out.content_type, "application/problem+json");

    let undo = envelope("op_a", ORDER, "reserve-inventory", "compensation", ten_kettles, json!({}));
    let released =
        post(&http, format!("{}/inventory/release", demo.shop_url), "op_a/reserve-inventory/compensate", &undo).await;
    assert_eq!(released.body["released"], json!([{ "sku": "kettle", "qty": 10 }]));

    let body = envelope("op_c", ORDER, "reserve-inventory", "forward", one_more, json!({}));
    assert_eq!(post(&http, reserve, "op_c/reserve-inventory", &body).await.status, StatusCode::OK);
}

#[tokio::test]
async fn asking_for_more_than_is_in_stock_says_how_many_are_left() {
    let (demo, http) = (demo().await, client());
    let input = json!({ "customer": "alice", "items": [{ "sku": "kettle", "qty": 11 }], "card": "4242424242424242" });
    let body = envelope("op_many", ORDER, "reserve-inventory", "forward", input, json!({}));
    let a = post(&http, format!("{}/inventory/reserve", demo.shop_url), "op_many/reserve-inventory", &body).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["detail"], "Only 10 kettle left.");
}

#[tokio::test]
async fn an_unknown_sku_is_refused_as_something_we_do_not_sell() {
    let (demo, http) = (demo().await, client());
    let input = json!({ "customer": "alice", "items": [{ "sku": "teapot", "qty": 1 }], "card": "4242424242424242" });
    let body = envelope("op_sku", ORDER, "reserve-inventory", "forward", input, json!({}));
    let a = post(&http, format!("{}/inventory/reserve", demo.shop_url), "op_sku/reserve-inventory", &body).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["detail"], "We do not sell teapot.");
}

#[tokio::test]
async fn the_audit_store_is_busy_twice_then_deletes() {
    let (demo, http) = (demo().await, client());
    let url = format!("{}/audit/delete", demo.account_url);
    let key = "op_audit/delete-audit-logs";
    let body = envelope("op_audit", DELETION, "delete-audit-logs", "forward", user(), json!({}));
    for _ in 0..2 {
        let busy = post(&http, url.clone(), key, &body).await;
        assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.content_type, "application/problem+json");
        assert_eq!(busy.body["detail"], "The audit store is busy.");
    }
    let done = post(&http, url.clone(), key, &body).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body["deleted"].as_u64().is_some_and(|n| n > 0));
    let again = post(&http, url, key, &body).await;
    assert_eq!(again.body, done.body, "after success the key's answer is fixed");
    let applied = get(&http, format!("{}/applied", demo.account_url)).await;
    assert_eq!(applied, json!({ key: 1 }), "busy attempts are not applied");
}

#[tokio::test]
async fn the_farewell_email_appears_in_the_outbox() {
    let (demo, http) = (demo().await, client());
    let results = json!({ "delete-transactions": { "deleted": 17 }, "delete-logs": { "deleted": 342 } });
    let body = envelope("op_bye", DELETION, "send-farewell-email", "forward", user(), results);
    let a = post(&http, format!("{}/mail/farewell", demo.account_url), "op_bye/send-farewell-email", &body).await;
    assert_eq!(a.status, StatusCode::OK);
    let outbox = get(&http, format!("{}/outbox", demo.account_url)).await;
    let mail = &outbox[0];
    assert_eq!(mail["to"], "alice@example.com");
    assert_eq!(mail["operation_id"], "op_bye");
    assert_eq!(mail["message_id"], a.body["message_id"]);
    assert!(mail["subject"].is_string() && mail["sent_at"].is_string());
    assert!(mail["body"].as_str().is_some_and(|b| b.contains("17 transactions")));
}

#[tokio::test]
async fn every_delete_returns_how_many_records_went_and_a_second_delete_finds_none() {
    let (demo, http) = (demo().await, client());
    let url = format!("{}/transactions/delete", demo.account_url);
    let body = envelope("op_1", DELETION, "delete-transactions", "forward", user(), json!({}));
    let first = post(&http, url.clone(), "op_1/delete-transactions", &body).await;
    assert!(first.body["deleted"].as_u64().is_some_and(|n| n > 0));
    let body = envelope("op_2", DELETION, "delete-transactions", "forward", user(), json!({}));
    let second = post(&http, url, "op_2/delete-transactions", &body).await;
    assert_eq!(second.body["deleted"], 0);
}

#[tokio::test]
async fn a_malformed_envelope_is_refused_with_a_400_problem() {
    let (demo, http) = (demo().await, client());
    let url = format!("{}/logs/delete", demo.account_url);
    let not_json = post(&http, url.clone(), "k/1", &json!("not an envelope")).await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.content_type, "application/problem+json");

    let resp = http.post(&url).body("{}").send().await.expect("answers");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "no Idempotency-Key header");

    let no_user = envelope("op_x", DELETION, "delete-logs", "forward", json!({}), json!({}));
    let a = post(&http, url, "op_x/delete-logs", &no_user).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body["detail"].as_str().is_some_and(|d| d.contains("user_id")));
}

/// Every call in the embedded workflow files must name a service the demo
/// registers and a path one of its apps serves.
#[tokio::test]
async fn every_workflow_call_reaches_a_route_the_demo_serves() {
    let (demo, http) = (demo().await, client());
    let services = demo.services();
    let mut calls = 0;
    for (file, text) in herald_demo::workflows() {
        let wf: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        for step in wf["steps"].as_array().expect("steps") {
            for call in ["call", "compensate"].iter().filter_map(|k| step.get(*k)) {
                let service = call["service"].as_str().expect("service");
                let path = call["path"].as_str().expect("path");
                let (_, base) = services
                    .iter()
                    .find(|(name, _)| name == service)
                    .unwrap_or_else(|| panic!("{file}: service {service} is not registered"));
                // An empty body is malformed (400) on a real route; unknown paths are 404.
                let resp = http.post(format!("{base}{path}")).header("idempotency-key", "probe").body("").send().await;
                assert_eq!(resp.expect("answers").status(), StatusCode::BAD_REQUEST, "{file}: {path}");
                calls += 1;
            }
        }
    }
    assert_eq!(
        calls, 11,
        "6 place-order calls (2 compensations) and 5 delete-account calls (herald sends the farewell itself)"
    );
}

#[tokio::test]
async fn an_unknown_path_answers_404_problem() {
    let (demo, http) = (demo().await, client());
    let resp = http.post(format!("{}/nowhere", demo.shop_url)).send().await.expect("answers");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}
