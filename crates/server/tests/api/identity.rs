//! Service identity and what end users see: a service's token acts only
//! for the services it names, registered instances live only where
//! `[registry] allow` says, end users get a projection of their
//! operations, and tokens travel in query strings only to event streams.

use herald_server::config::{StaticRole, StaticToken};
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "a-test-secret-of-at-least-32-characters";
const SHOP: &str = "shop-token-0123456789";
/// Speaks for `payment` and `svc`.
const PAYMENT: &str = "payment-token-0123456789";

fn jwt(claims: Value) -> String {
    herald_testkit::auth::hs256_jwt(SECRET, &claims)
}

fn user(sub: &str) -> String {
    jwt(json!({"sub": sub, "exp": chrono::Utc::now().timestamp() + 600}))
}

async fn app(workflows: &[&str], svc: &StepService, allow: &[&str]) -> TestApp {
    let allow: Vec<String> = allow.iter().map(|a| a.to_string()).collect();
    let mut app = spawn_app_with(tempfile::tempdir().unwrap(), workflows, svc, |c| {
        c.auth.users = Some(herald_testkit::auth::hs256(SECRET));
        let token = |name: &str, token: &str, services: Option<Vec<String>>| StaticToken {
            name: name.into(),
            token: token.into(),
            role: StaticRole::Service,
            services,
        };
        c.auth.tokens =
            vec![token("shop", SHOP, None), token("payments", PAYMENT, Some(vec!["payment".into(), "svc".into()]))];
        if !allow.is_empty() {
            c.registry.allow = allow;
        }
    })
    .await;
    app.token = Some(PAYMENT.into());
    app
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

fn instance_ids(services: &Value, name: &str) -> Vec<String> {
    let items = services["items"].as_array().unwrap();
    let svc = items.iter().find(|s| s["name"] == name);
    svc.map_or(vec![], |s| s["instances"].as_array().unwrap().iter().map(|i| i["id"].to_string()).collect())
}

#[tokio::test]
async fn a_service_token_registers_instances_only_of_the_services_it_speaks_for() {
    let svc = StepService::start().await;
    let app = app(&[], &svc, &["127.0.0.1"]).await;
    let put = |token: &str, service: &str| {
        app.http
            .put(app.url(&format!("/v1/services/{service}/instances/rogue")))
            .bearer_auth(token)
            .json(&json!({"url": svc.url}))
    };
    let (status, problem) = send(put(SHOP, "payment")).await;
    assert_eq!((status, problem["type"].as_str()), (403, Some("urn:herald:problem:forbidden")), "{problem}");
    let services = send(app.http.get(app.url("/v1/services")).bearer_auth(SHOP)).await.1;
    assert!(instance_ids(&services, "payment").is_empty(), "the rogue was registered: {services}");

    assert_eq!(send(put(SHOP, "shop")).await.0, 201, "a token speaks for the service it is named after");
    assert_eq!(send(put(PAYMENT, "payment")).await.0, 201, "and for those its `services` lists");
    let delete = app.http.delete(app.url("/v1/services/payment/instances/rogue")).bearer_auth(SHOP);
    assert_eq!(send(delete).await.0, 403);
    let services = send(app.http.get(app.url("/v1/services")).bearer_auth(SHOP)).await.1;
    assert_eq!(instance_ids(&services, "payment").len(), 1, "{services}");
}

#[tokio::test]
async fn registered_instances_must_be_where_the_registry_allows() {
    let svc = StepService::start().await;
    let app = app(&[], &svc, &[]).await;
    for url in
        ["http://169.254.169.254", "http://127.0.0.1:8080", "http://[::1]:80", "http://localhost", "http://8.8.8.8"]
    {
        let put = app.http.put(app.url("/v1/services/payment/instances/relay")).bearer_auth(PAYMENT);
        let (status, problem) = send(put.json(&json!({"url": url}))).await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("registry"), "{problem}");
    }
    let services = send(app.http.get(app.url("/v1/services")).bearer_auth(PAYMENT)).await.1;
    assert!(instance_ids(&services, "payment").is_empty(), "{services}");
    let put = app.http.put(app.url("/v1/services/payment/instances/ok")).bearer_auth(PAYMENT);
    assert_eq!(send(put.json(&json!({"url": "http://10.0.0.7:8080"}))).await.0, 201, "private networks by default");
}

#[tokio::test]
async fn a_push_subscription_is_made_and_changed_only_by_its_target_s_token() {
    let svc = StepService::start().await;
    let app = app(&[], &svc, &[]).await;
    let put = |token: &str, target: &str| {
        app.http
            .put(app.url("/v1/subscriptions/orders-out"))
            .bearer_auth(token)
            .json(&json!({"topic": "orders", "push": {"service": target, "path": "/events"}}))
    };
    assert_eq!(send(put(SHOP, "svc")).await.0, 403, "shop cannot have svc sent a body it chose");
    let get = || app.http.get(app.url("/v1/subscriptions/orders-out")).bearer_auth(PAYMENT);
    assert_eq!(send(get()).await.0, 404, "nothing was made");

    assert_eq!(send(put(PAYMENT, "svc")).await.0, 201);
    let shop = app.http.put(app.url("/v1/services/shop/instances/s-1")).bearer_auth(SHOP);
    assert_eq!(send(shop.json(&json!({"url": "http://10.0.0.9"}))).await.0, 201);
    assert_eq!(send(put(SHOP, "shop")).await.0, 403, "nor take svc's subscription over");
    let delete = app.http.delete(app.url("/v1/subscriptions/orders-out")).bearer_auth(SHOP);
    assert_eq!(send(delete).await.0, 403);
    let (status, sub) = send(get()).await;
    assert_eq!((status, sub["push"]["service"].as_str()), (200, Some("svc")), "{sub}");
}

#[tokio::test]
async fn an_end_user_sees_labels_states_and_outcome_but_no_card_number_or_raw_results() {
    let svc = StepService::start().await;
    svc.on("/a", Reply::Json(json!({"internal": "ledger-row-77"})));
    let wf = sequential("order", &["a"], "subject = \"/user\"\nvisible_input = [\"items\"]");
    let app = app(&[&wf], &svc, &[]).await;
    let input = json!({"user": "alice", "card": "4242424242424242", "items": ["tea"]});
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let start =
        app.http.post(app.url("/v1/workflows/order/operations")).bearer_auth(SHOP).header("traceparent", caller);
    let start = start.json(&input);
    let (status, started) = send(start).await;
    assert_eq!(status, 202);
    let id = started["id"].as_str().unwrap().to_string();
    let op = app.wait_final(&id).await;
    assert_eq!(op["input"]["card"], "4242424242424242", "services see it all");
    assert_eq!(op["trace"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "services see the trace: {op}");
    assert_eq!(op["steps"][0]["result"]["internal"], "ledger-row-77");

    let alice = user("alice");
    let own = send(app.http.get(app.url(&format!("/v1/operations/{id}"))).bearer_auth(&alice)).await.1;
    let mine = send(app.http.get(app.url("/v1/me/operations")).bearer_auth(&alice)).await.1;
    let listed = send(app.http.get(app.url("/v1/operations")).bearer_auth(&alice)).await.1;
    for view in [&own, &mine["items"][0], &listed["items"][0]] {
        assert_eq!(view["input"], json!({"items": ["tea"]}), "{view}");
        assert_eq!(view["steps"][0]["status"], "succeeded");
        assert_eq!(view["steps"][0]["label"], "Doing a");
        assert!(view["steps"][0]["result"].is_null(), "{view}");
        assert!(view.get("trace").is_none(), "the trace is for operators: {view}");
        assert_eq!(view["outcome"]["status"], "succeeded");
        let text = view.to_string();
        assert!(!text.contains("4242424242424242") && !text.contains("ledger-row"), "{text}");
    }
    let inbox = send(app.http.get(app.url("/v1/me/notifications")).bearer_auth(&alice)).await.1;
    assert!(!inbox.to_string().contains("4242424242424242"), "{inbox}");
}

#[tokio::test]
async fn an_end_user_reads_a_service_s_problem_detail_but_never_its_raw_error_text() {
    let svc = StepService::start().await;
    let leak = "pq: relation ledger_77 does not exist";
    let raw = json!({"error": leak, "message": leak, "trace": "at Ledger.java:77"});
    svc.then("/a", vec![Reply::JsonStatus(500, raw.clone()), Reply::JsonStatus(500, raw)]);
    svc.on("/b", Reply::Status(402, "Your card was declined."));
    let wf = sequential("order", &["a", "b"], "subject = \"/user\"");
    let app = app(&[&wf], &svc, &[]).await;
    let start = app.http.post(app.url("/v1/workflows/order/operations")).bearer_auth(SHOP);
    let id = send(start.json(&json!({"user": "alice"}))).await.1["id"].as_str().unwrap().to_string();
    let op = app.wait_final(&id).await;
    assert_eq!(op["status"], "failed", "{op}");

    let alice = user("alice");
    let get = |path: String| app.http.get(app.url(&path)).bearer_auth(&alice);
    let own = send(get(format!("/v1/operations/{id}"))).await.1;
    let stream = get(format!("/v1/operations/{id}/events")).send().await.unwrap().text().await.unwrap();
    let inbox = send(get("/v1/me/notifications".into())).await.1;
    let seen = format!("{own}{stream}{inbox}");
    assert!(seen.contains("Your card was declined."), "the problem's detail is for the person: {seen}");
    assert!(seen.contains("the service answered 500"), "herald's own words instead: {seen}");
    assert!(!seen.contains("ledger_77") && !seen.contains("Ledger.java"), "raw error text shown: {seen}");
}

#[tokio::test]
async fn a_token_in_the_query_opens_only_an_event_stream_and_only_for_an_end_user() {
    let svc = StepService::start().await;
    let wf = sequential("order", &["a"], "subject = \"/user\"");
    let app = app(&[&wf], &svc, &[]).await;
    let start = app.http.post(app.url("/v1/workflows/order/operations")).bearer_auth(SHOP);
    let id = send(start.json(&json!({"user": "alice"}))).await.1["id"].as_str().unwrap().to_string();
    app.wait_final(&id).await;
    let alice = user("alice");
    let events = format!("/v1/operations/{id}/events");
    // Each on a fresh connection too, which herald serves on its own fast path.
    for http in [app.http.clone(), reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()] {
        let get = |path: String| http.get(app.url(&path));
        assert_eq!(send(get(format!("{events}?access_token={alice}"))).await.0, 200);
        assert_eq!(send(get(format!("{events}?access_token={SHOP}"))).await.0, 401, "a static token never");
        assert_eq!(send(get(format!("/v1/operations/{id}?access_token={alice}"))).await.0, 401);
        assert_eq!(send(get(format!("/v1/operations?access_token={SHOP}"))).await.0, 401);
        assert_eq!(send(get(format!("/v1/me/notifications?access_token={alice}"))).await.0, 401);
        assert_eq!(send(get(format!("/v1/me/notifications/stream?access_token={SHOP}"))).await.0, 401);
    }
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let svc = StepService::start().await;
    let app = app(&[], &svc, &[]).await;
    let now = chrono::Utc::now().timestamp();
    let early = jwt(json!({"sub": "alice", "exp": now + 3600, "nbf": now + 600}));
    let (status, problem) = send(app.http.get(app.url("/v1/me/operations")).bearer_auth(&early)).await;
    assert_eq!(status, 401);
    assert!(problem["detail"].as_str().unwrap().contains("not valid yet"), "{problem}");
    let ok = jwt(json!({"sub": "alice", "exp": now + 3600, "nbf": now - 5}));
    assert_eq!(send(app.http.get(app.url("/v1/me/operations")).bearer_auth(&ok)).await.0, 200);
}
