//! The demo apps over real HTTP, called the way herald calls them.

mod common;

use common::{DELETION, ORDER, client, demo, demo_on, envelope, get, order, post, reserve, stock, user};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_declined_card_is_refused_with_a_problem_the_shopper_can_read() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let body = envelope("op_declined", ORDER, "charge-payment", "forward", order("4000000000000002"), json!({}));
    let a = post(&http, format!("{}/payment/charge", demo.shop_url), "op_declined/charge-payment", &body).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["detail"], "Your card was declined.");
    assert!(a.body["type"].is_string() && a.body["title"].is_string());
    let applied = get(&http, format!("{}/applied", demo.shop_url)).await;
    assert_eq!(applied, json!({}), "a declined charge applies nothing");
}

/// herald says which language the operation speaks (`lang`), and the
/// shopper reads the refusal on the timeline: it is written in that language.
#[tokio::test]
async fn a_refusal_is_written_in_the_language_of_its_operation() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let said = [
        ("de", "Ihre Karte wurde abgelehnt."),
        ("fr", "Votre carte a été refusée."),
        ("sv", "Your card was declined."),
    ];
    for (lang, detail) in said {
        let mut body =
            envelope(&format!("op_{lang}"), ORDER, "charge-payment", "forward", order("4000000000000002"), json!({}));
        body["lang"] = json!(lang);
        let key = format!("op_{lang}/charge-payment");
        let a = post(&http, format!("{}/payment/charge", demo.shop_url), &key, &body).await;
        assert_eq!((a.status, a.body["detail"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some(detail)), "{lang}");
    }
    let mut body = envelope("op_de_kettle", ORDER, "reserve-inventory", "forward", json!({}), json!({}));
    body["input"] =
        json!({ "customer": "alice", "items": [{ "sku": "kettle", "qty": 0 }], "card": "4242424242424242" });
    body["lang"] = json!("de-AT");
    let a = post(&http, format!("{}/inventory/reserve", demo.shop_url), "op_de_kettle/reserve-inventory", &body).await;
    assert_eq!(a.body["detail"], "Bitte wählen Sie mindestens 1 × Wasserkocher.");
}

#[tokio::test]
async fn a_good_card_is_charged_for_the_items_and_refunded_on_compensation() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
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
async fn a_repeated_idempotency_key_charges_once() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let url = format!("{}/payment/charge", demo.shop_url);
    let body = envelope("op_twice", ORDER, "charge-payment", "forward", order("4242424242424242"), json!({}));
    let key = "op_twice/charge-payment";
    let first = post(&http, url.clone(), key, &body).await;
    let second = post(&http, url.clone(), key, &body).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body, second.body, "the kept reply is replayed");
    assert!(first.body["charge"].as_str().is_some_and(|c| c.starts_with("ch_")));

    // Duplicates racing each other are applied once too.
    let racing = "op_race/charge-payment";
    let (a, b) = tokio::join!(post(&http, url.clone(), racing, &body), post(&http, url, racing, &body));
    assert_eq!(a.body, b.body);

    let applied = get(&http, format!("{}/applied", demo.shop_url)).await;
    assert_eq!(applied, json!({ key: 1, racing: 1 }));
}

/// The inventory's inbox: the key is claimed in the transaction that
/// takes the stock, so a repeat takes nothing and gets the kept answer.
#[tokio::test]
async fn a_repeated_reserve_takes_the_stock_once_and_answers_the_same() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let first = reserve(&http, demo, "op_twice", order("4242424242424242")).await;
    let second = reserve(&http, demo, "op_twice", order("4242424242424242")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.content_type, "application/json");
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body, second.body, "the kept answer is replayed");
    assert!(first.body["reservation"].as_str().is_some_and(|r| r.starts_with("res_")));
    assert_eq!(first.body["items"], json!([{ "sku": "tea", "qty": 1 }]));
    assert_eq!(stock(&http, demo).await["tea"], 99);

    // Duplicates racing each other take it once too.
    let (a, b) =
        tokio::join!(reserve(&http, demo, "op_race", order("4242")), reserve(&http, demo, "op_race", order("4242")));
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a.body, b.body);
    assert_ne!(a.body["reservation"], first.body["reservation"]);
    assert_eq!(stock(&http, demo).await["tea"], 98);
}

/// A refusal is a final answer too: the same key keeps getting it, even
/// once the stock would allow the reserve.
#[tokio::test]
async fn a_refused_reserve_keeps_its_answer_for_its_key() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let kettles = |qty: u32| json!({ "customer": "bob", "items": [{ "sku": "kettle", "qty": qty }], "card": "4242" });
    assert_eq!(reserve(&http, demo, "op_all", kettles(10)).await.status, StatusCode::OK);
    let refused = reserve(&http, demo, "op_late", kettles(1)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["detail"], "Sorry, kettle is sold out.");

    let undo = envelope("op_all", ORDER, "reserve-inventory", "compensation", kettles(10), json!({}));
    let url = format!("{}/inventory/release", demo.shop_url);
    assert_eq!(post(&http, url, "op_all/reserve-inventory/compensate", &undo).await.status, StatusCode::OK);
    let again = reserve(&http, demo, "op_late", kettles(1)).await;
    assert_eq!((again.status, again.body), (refused.status, refused.body));
    assert_eq!(stock(&http, demo).await["kettle"], 10);
}

/// Stock and holds are in the inventory's database: a restart on the same
/// directory finds them, and can release what was held before it.
#[tokio::test]
async fn stock_and_holds_survive_a_restart_on_the_same_data_directory() {
    let http = client();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let three = json!({ "customer": "dana", "items": [{ "sku": "kettle", "qty": 3 }], "card": "4242" });
    let first = demo_on(dir.path()).await;
    let reserved = reserve(&http, &first, "op_kept", three.clone()).await;
    assert_eq!(reserved.status, StatusCode::OK);
    assert_eq!(stock(&http, &first).await["kettle"], 7);
    drop(first);

    let second = demo_on(dir.path()).await;
    assert_eq!(stock(&http, &second).await, json!({ "kettle": 7, "mug": 50, "tea": 100 }), "not stocked again");
    let repeat = reserve(&http, &second, "op_kept", three.clone()).await;
    assert_eq!(repeat.body, reserved.body, "the inbox outlives the restart too");
    let undo = envelope("op_kept", ORDER, "reserve-inventory", "compensation", three, json!({}));
    let url = format!("{}/inventory/release", second.shop_url);
    let released = post(&http, url, "op_kept/reserve-inventory/compensate", &undo).await;
    assert_eq!(released.body["released"], json!([{ "sku": "kettle", "qty": 3 }]));
    assert_eq!(stock(&http, &second).await["kettle"], 10);
}

#[tokio::test]
async fn analytics_counts_an_event_once_however_often_it_is_delivered() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let url = format!("{}/analytics/events", demo.shop_url);
    let placed = json!({
        "specversion": "1.0", "id": "op_1/announce-order", "source": "/herald/workflows/place-order",
        "type": "OrderPlaced", "subject": "alice", "data": { "operation_id": "op_1" },
    });
    let key = "analytics-orders//herald/workflows/place-order/op_1/announce-order";
    for _ in 0..2 {
        let a = post(&http, url.clone(), key, &placed).await;
        assert_eq!(a.status, StatusCode::OK, "acknowledged every time");
    }
    let mut reserved = placed.clone();
    reserved["type"] = json!("ItemsReserved");
    reserved["id"] = json!("op_1/reserve-inventory");
    assert_eq!(post(&http, url.clone(), "analytics-inventory/x", &reserved).await.status, StatusCode::OK);
    let mut other = placed.clone();
    other["type"] = json!("SomethingElse");
    assert_eq!(post(&http, url.clone(), "analytics-orders/y", &other).await.status, StatusCode::OK);

    let counts = get(&http, format!("{}/analytics", demo.shop_url)).await;
    assert_eq!(counts, json!({ "orders": 1, "reservations": 1, "releases": 0 }));

    let not_an_event = post(&http, url, "z", &json!({ "type": "OrderPlaced" })).await;
    assert_eq!(not_an_event.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_an_event.content_type, "application/problem+json");
}

#[tokio::test]
async fn releasing_puts_reserved_items_back_on_the_shelf() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
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
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let input = json!({ "customer": "alice", "items": [{ "sku": "kettle", "qty": 11 }], "card": "4242424242424242" });
    let body = envelope("op_many", ORDER, "reserve-inventory", "forward", input, json!({}));
    let a = post(&http, format!("{}/inventory/reserve", demo.shop_url), "op_many/reserve-inventory", &body).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["detail"], "Only 10 kettle left.");
}

#[tokio::test]
async fn an_unknown_sku_is_refused_as_something_we_do_not_sell() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let input = json!({ "customer": "alice", "items": [{ "sku": "teapot", "qty": 1 }], "card": "4242424242424242" });
    let body = envelope("op_sku", ORDER, "reserve-inventory", "forward", input, json!({}));
    let a = post(&http, format!("{}/inventory/reserve", demo.shop_url), "op_sku/reserve-inventory", &body).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["detail"], "We do not sell teapot.");
}

#[tokio::test]
async fn the_audit_store_is_busy_twice_then_deletes() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
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
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
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
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
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
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
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
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
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
        calls, 10,
        "5 place-order calls (2 compensations; it publishes the order rather than call analytics) \
         and 5 delete-account calls (herald sends the farewell itself)"
    );

    // The subscriptions herald needs push to a registered service, on a route the shop serves.
    for (name, definition) in herald_demo::subscriptions() {
        let service = definition["push"]["service"].as_str().expect("a push subscription");
        let path = definition["push"]["path"].as_str().expect("a path");
        let (_, base) = services.iter().find(|(s, _)| s == service).unwrap_or_else(|| panic!("{name}: {service}"));
        let resp = http.post(format!("{base}{path}")).header("idempotency-key", "probe").body("").send().await;
        assert_eq!(resp.expect("answers").status(), StatusCode::BAD_REQUEST, "{name}: {path}");
    }
}

#[tokio::test]
async fn an_unknown_path_answers_404_problem() {
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let resp = http.post(format!("{}/nowhere", demo.shop_url)).send().await.expect("answers");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}
