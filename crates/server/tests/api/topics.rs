//! Publishing and pull subscriptions over HTTP: the CloudEvents modes, the
//! dedupe window, long polls, acks and nacks, and bad input refused with
//! nothing stored.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::helpers::*;

async fn app() -> TestApp {
    spawn_app_with(tempfile::tempdir().unwrap(), &[], &StepService::start().await, |c| {
        c.broker.max_event_bytes = 2048;
    })
    .await
}

async fn problem(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let p: Value = resp.json().await.unwrap();
    (status, p["type"].as_str().unwrap().to_string(), p["detail"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn events_in_every_mode_reach_a_pull_subscription_and_a_repeat_is_stored_once() {
    let app = app().await;
    assert_eq!(app.put_subscription("audit", json!({"topic": "orders"})).await.status(), 201);
    assert_eq!(app.put_subscription("audit", json!({"topic": "orders"})).await.status(), 200, "unchanged");

    let one = app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({"data": {"n": 1}}))).await;
    let batch = app
        .http
        .post(app.url("/v1/topics/orders/events"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(
            json!([
                cloud_event("e2", "OrderPlaced", json!({})),
                cloud_event("e3", "OrderPaid", json!({"partitionkey": "alice"}))
            ])
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let binary = app
        .http
        .post(app.url("/v1/topics/orders/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "e4")
        .header("ce-source", "/tests")
        .header("ce-type", "OrderShipped")
        .header("content-type", "application/json")
        .body(r#"{"box": 7}"#)
        .send()
        .await
        .unwrap();
    let again = app.publish("orders", &cloud_event("e1", "OrderPlaced", json!({"data": {"n": 2}}))).await;

    assert_eq!(one.status(), 200);
    assert_eq!(batch.status(), 200);
    assert_eq!(binary.status(), 200);
    let first: Value = one.json().await.unwrap();
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["events"][0]["duplicate"], true);
    assert_eq!(again["events"][0]["seq"], first["events"][0]["seq"], "the first copy's place");
    let pulled: Value = app.consume("audit", "pull", json!({"max": 10})).await.json().await.unwrap();
    let messages = pulled["messages"].as_array().unwrap();
    let ids: Vec<&str> = messages.iter().map(|m| m["event"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["e1", "e2", "e3", "e4"]);
    assert_eq!(messages[0]["event"]["data"]["n"], 1, "the repeat changed nothing");
    assert_eq!(messages[3]["event"]["data"]["box"], 7, "binary-mode JSON data is JSON");
    assert_eq!(messages[0]["attempt"], 1);
    let ack_ids: Vec<Value> = messages.iter().map(|m| m["ack_id"].clone()).collect();
    let acked: Value = app.consume("audit", "ack", json!({"ack_ids": ack_ids})).await.json().await.unwrap();
    assert_eq!(acked["acked"], 4);
    let stats = app.stats("audit").await;
    assert_eq!((stats["pending"].as_u64(), stats["in_flight"].as_u64()), (Some(0), Some(0)));
}

#[tokio::test]
async fn bad_events_are_refused_with_a_problem_and_nothing_is_stored() {
    let app = app().await;
    app.put_subscription("s", json!({"topic": "t"})).await;
    let post = |ct: &'static str, body: String| {
        app.http.post(app.url("/v1/topics/t/events")).header("content-type", ct).body(body).send()
    };
    let mut no_id = cloud_event("x", "T", json!({}));
    no_id.as_object_mut().unwrap().remove("id");

    let cases = vec![
        (app.publish("t", &no_id).await, 422, "invalid-event", "`id`"),
        (
            app.publish("t", &cloud_event("x", "T", json!({"specversion": "0.3"}))).await,
            422,
            "invalid-event",
            "specversion",
        ),
        (app.publish("t", &cloud_event("x", "T", json!({"Bad-Ext": 1}))).await, 422, "invalid-event", "Bad-Ext"),
        (post("application/cloudevents+json", "{oops".into()).await.unwrap(), 400, "invalid-json", ""),
        (post("text/plain", "hello".into()).await.unwrap(), 415, "unsupported-media-type", "ce-"),
        (post("application/cloudevents-batch+json", "[]".into()).await.unwrap(), 422, "invalid-event", "empty"),
        (
            post(
                "application/cloudevents-batch+json",
                json!([cloud_event("ok", "T", json!({})), cloud_event("bad", "T", json!({"time": "noon"}))])
                    .to_string(),
            )
            .await
            .unwrap(),
            422,
            "invalid-event",
            "event 1",
        ),
        (
            app.publish("t", &cloud_event("big", "T", json!({"data": "x".repeat(3000)}))).await,
            413,
            "payload-too-large",
            "2048",
        ),
        (app.publish("a%20b", &cloud_event("x", "T", json!({}))).await, 422, "invalid-input", "topic"),
        (
            app.http
                .post(app.url("/v1/topics/t/events"))
                .header("ce-specversion", "1.0")
                .header("ce-id", "x")
                .header("ce-source", "/s")
                .body("data")
                .send()
                .await
                .unwrap(),
            422,
            "invalid-event",
            "`type`",
        ),
    ];
    for (resp, status, kind, detail) in cases {
        let (s, k, d) = problem(resp).await;
        assert_eq!((s, k.as_str()), (status, format!("urn:herald:problem:{kind}").as_str()), "{d}");
        assert!(d.contains(detail), "{d:?} should mention {detail:?}");
    }
    assert_eq!(app.stats("s").await["pending"], 0, "nothing was stored");
    let ok = app.publish("t", &cloud_event("ok", "T", json!({}))).await.json::<Value>().await.unwrap();
    assert_eq!(ok["events"][0]["duplicate"], false, "the valid event of the refused batch was not kept either");
}

#[tokio::test]
async fn subscriptions_are_checked_listed_and_deleted() {
    let app = app().await;
    let refused = [
        (json!({"topic": "t", "push": {"service": "nowhere", "path": "/in"}}), "push.service"),
        (json!({"topic": "t", "retry": {"attempts": 0}}), "retry.attempts"),
        (json!({"topic": "not a topic"}), "topic"),
    ];
    for (body, field) in refused {
        let (status, kind, detail) = problem(app.put_subscription("s", body).await).await;
        assert_eq!((status, kind.as_str()), (422, "urn:herald:problem:invalid-subscription"));
        assert!(detail.contains(field), "{detail}");
    }
    let (status, _, _) = problem(app.put_subscription("herald.mine", json!({"topic": "t"})).await).await;
    assert_eq!(status, 422, "herald's own names are reserved");
    let (status, _, _) = problem(app.put_subscription("s", json!({"topic": "t", "colour": "red"})).await).await;
    assert_eq!(status, 422, "unknown fields are refused");

    app.put_subscription("pulled", json!({"topic": "t"})).await;
    app.put_subscription("pushed", json!({"topic": "t", "push": {"service": "svc", "path": "/events"}})).await;
    let list = app.get_json("/v1/subscriptions").await;
    let modes: Vec<(&str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["mode"].as_str().unwrap()))
        .collect();
    assert_eq!(modes, [("pulled", "pull"), ("pushed", "push")]);
    let (status, kind, _) = problem(app.consume("pushed", "pull", json!({})).await).await;
    assert_eq!((status, kind.as_str()), (409, "urn:herald:problem:conflict"), "herald delivers a push subscription");

    let deleted = app.http.delete(app.url("/v1/subscriptions/pulled")).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    for resp in [
        app.http.get(app.url("/v1/subscriptions/pulled")).send().await.unwrap(),
        app.consume("pulled", "pull", json!({})).await,
        app.http.delete(app.url("/v1/subscriptions/pulled")).send().await.unwrap(),
    ] {
        let (status, kind, _) = problem(resp).await;
        assert_eq!((status, kind.as_str()), (404, "urn:herald:problem:unknown-subscription"));
    }
}

#[tokio::test]
async fn a_pull_waits_for_events_and_a_nack_brings_one_back_or_gives_it_up() {
    let app = app().await;
    app.put_subscription("s", json!({"topic": "t", "retry": {"attempts": 3}})).await;

    let started = Instant::now();
    let waiting = {
        let (http, url) = (app.http.clone(), app.url("/v1/subscriptions/s:pull"));
        tokio::spawn(async move {
            http.post(url).json(&json!({"wait": "5s"})).send().await.unwrap().json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.publish("t", &cloud_event("e1", "T", json!({}))).await;
    let first = waiting.await.unwrap();
    let waited = started.elapsed();

    assert_eq!(first["messages"][0]["event"]["id"], "e1");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(4),
        "answered when the event came: {waited:?}"
    );
    let nacked: Value = app
        .consume("s", "nack", json!({"ack_ids": [first["messages"][0]["ack_id"]], "delay": "200ms", "error": "busy"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(nacked["retrying"], 1);
    let at_once: Value = app.consume("s", "pull", json!({})).await.json().await.unwrap();
    assert!(at_once["messages"].as_array().unwrap().is_empty(), "not before its delay");
    let second: Value = app.consume("s", "pull", json!({"wait": "3s"})).await.json().await.unwrap();
    assert_eq!(second["messages"][0]["attempt"], 2);

    let stale: Value = app
        .consume("s", "ack", json!({"ack_ids": [first["messages"][0]["ack_id"], "nonsense"]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stale["acked"], 0, "an old lease's ack id no longer answers");
    let given_up: Value = app
        .consume(
            "s",
            "nack",
            json!({"ack_ids": [second["messages"][0]["ack_id"]], "retry": false, "error": "cannot parse it"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(given_up["dead_lettered"], 1);
    let letters = app.dead_letters("kind=event&subscription=s", 1, Duration::from_secs(1)).await;
    assert_eq!(letters[0]["topic"], "t");
    assert_eq!(letters[0]["payload"]["id"], "e1");
    let errors: Vec<&str> =
        letters[0]["errors"].as_array().unwrap().iter().map(|e| e["error"].as_str().unwrap()).collect();
    assert_eq!(errors, ["busy", "cannot parse it"], "every attempt's error");
    assert_eq!(app.stats("s").await["dead_letters"], 1);
}

#[tokio::test]
async fn dead_letters_are_paged_read_and_dropped() {
    let app = app().await;
    app.put_subscription("s", json!({"topic": "t"})).await;
    for i in 0..3 {
        app.publish("t", &cloud_event(&format!("e{i}"), "T", json!({}))).await;
    }
    let pulled: Value = app.consume("s", "pull", json!({"max": 10})).await.json().await.unwrap();
    let ids: Vec<Value> = pulled["messages"].as_array().unwrap().iter().map(|m| m["ack_id"].clone()).collect();
    app.consume("s", "nack", json!({"ack_ids": ids, "retry": false, "error": "unreadable"})).await;

    let first = app.get_json("/v1/dead-letters?subscription=s&limit=2").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = app.get_json(&format!("/v1/dead-letters?subscription=s&limit=2&cursor={cursor}")).await;
    let one = first["items"][0].clone();
    let id = one["id"].as_i64().unwrap();
    let read = app.get_json(&format!("/v1/dead-letters/{id}")).await;
    let dropped = app.http.delete(app.url(&format!("/v1/dead-letters/{id}"))).send().await.unwrap();
    let gone = app.http.get(app.url(&format!("/v1/dead-letters/{id}"))).send().await.unwrap();
    let bad_kind = app.http.get(app.url("/v1/dead-letters?kind=parcel")).send().await.unwrap();
    let bad_cursor = app.http.get(app.url("/v1/dead-letters?cursor=later")).send().await.unwrap();

    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null(), "the last page");
    let mut all: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|d| d["payload"]["id"].as_str().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, ["e0", "e1", "e2"], "every dead letter once across the pages");
    assert_eq!(read, one);
    assert_eq!(dropped.status(), 204);
    assert_eq!(problem(gone).await.0, 404);
    assert_eq!(problem(bad_kind).await.0, 422);
    assert_eq!(problem(bad_cursor).await.0, 422);
    assert_eq!(app.stats("s").await["dead_letters"], 2);
}
