//! Traces as an OTLP collector receives them: one trace per operation,
//! joined to its caller's, each step call a client span whose
//! `traceparent` the service received, kept across a restart.

use std::time::Duration;

use herald_testkit::otlp::{Receiver, Span};
use serde_json::json;

use crate::helpers::*;

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traced(receiver: &Receiver) -> impl FnOnce(&mut herald_server::Config) + '_ {
    |c| {
        c.tracing.enabled = true;
        c.tracing.endpoint = Some(receiver.endpoint.clone());
        c.tracing.batch_delay = Some(Duration::from_millis(50));
    }
}

fn of<'a>(spans: &'a [Span], op: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.attributes.get("herald.operation.id").map(String::as_str) == Some(op)).collect()
}

fn named<'a>(spans: &[&'a Span], name: &str) -> Vec<&'a Span> {
    spans.iter().copied().filter(|s| s.name == name).collect()
}

/// Starts `workflow` with these trace headers: the operation and its id.
async fn start(
    app: &TestApp,
    workflow: &str,
    input: serde_json::Value,
    headers: &[(&str, &str)],
) -> (serde_json::Value, String) {
    let mut req = app.http.post(app.url(&format!("/v1/workflows/{workflow}/operations"))).json(&input);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let op: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    let id = op["id"].as_str().unwrap().to_string();
    (op, id)
}

/// The span of `op` called `name`, once the receiver has it.
async fn operation_spans(receiver: &Receiver, op: &str) -> Vec<Span> {
    let done = |spans: &[Span]| of(spans, op).iter().any(|s| s.name.starts_with("operation "));
    receiver.when("the operation's span exported", Duration::from_secs(10), done).await
}

#[tokio::test]
async fn an_operation_is_one_trace_joined_to_its_caller_with_a_client_span_per_call() {
    let receiver = Receiver::start().await;
    let svc = StepService::start().await;
    svc.then("/b", vec![Reply::Status(503, "busy")]);
    let flow = sequential("order", &["a", "b"], "");
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&flow], &svc, traced(&receiver)).await;

    let (op, id) = start(&app, "order", json!({}), &[("traceparent", CALLER), ("tracestate", "vendor=1")]).await;
    assert_eq!(op["trace"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{op}");
    assert_eq!(op["trace"]["state"], "vendor=1", "the caller's tracestate is kept, to pass on");
    assert_eq!(app.wait_final(&id).await["status"], "succeeded");

    let all = operation_spans(&receiver, &id).await;
    let spans = of(&all, &id);
    assert!(spans.iter().all(|s| s.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"), "{spans:#?}");
    assert!(spans.iter().all(|s| s.service == "herald"));
    let root = named(&spans, "operation order")[0];
    assert_eq!((root.parent_id.as_str(), root.kind), ("00f067aa0ba902b7", 2), "a server span under the caller's");
    assert_eq!(root.span_id, op["trace"]["span_id"].as_str().unwrap());
    assert_eq!(root.attributes["herald.outcome"], "succeeded");

    for step in ["a", "b"] {
        let phase = named(&spans, &format!("step {step}"));
        assert_eq!(phase.len(), 1, "{step}: {spans:#?}");
        assert_eq!(phase[0].parent_id, root.span_id);
        let calls = named(&spans, &format!("call {step}"));
        let received = svc.calls(&format!("/{step}"));
        assert_eq!(calls.len(), received.len(), "{step}: a client span per call");
        for call in &calls {
            assert_eq!((call.kind, call.parent_id.as_str()), (3, phase[0].span_id.as_str()), "{step}");
            assert!(call.start_ns >= phase[0].start_ns && call.end_ns <= phase[0].end_ns, "{step}: within its step");
        }
        // What each call carried is the child of one of those spans.
        for r in &received {
            let tp = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", &r.traceparent[36..52]);
            assert_eq!(r.traceparent, tp, "the caller's trace, sampled");
            assert!(calls.iter().any(|c| c.span_id == r.traceparent[36..52]), "{step}: {}", r.traceparent);
        }
    }
    let b_calls = named(&spans, "call b");
    assert_eq!(b_calls.iter().filter(|c| c.error).count(), 1, "the 503 is an error span");
    assert_eq!(b_calls[0].attributes["http.request.method"], "POST");
    assert!(b_calls[0].attributes["url.full"].ends_with("/b"), "{:?}", b_calls[0].attributes);
    let backoff = named(&spans, "retry backoff b");
    assert_eq!(backoff.len(), 1);
    assert_eq!(backoff[0].parent_id, named(&spans, "step b")[0].span_id);
    assert_eq!(svc.calls("/a")[0].traceparent.len(), 55);
}

#[tokio::test]
async fn without_a_caller_the_operation_id_is_the_trace_id_and_a_bad_traceparent_is_not_joined() {
    let receiver = Receiver::start().await;
    let svc = StepService::start().await;
    let app =
        spawn_app_with(tempfile::tempdir().unwrap(), &[&sequential("order", &["a"], "")], &svc, traced(&receiver))
            .await;
    let bad = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
    let (op, id) = start(&app, "order", json!({}), &[("traceparent", bad)]).await;
    assert!(op.get("trace").is_none(), "nothing to keep: every id follows from the operation's: {op}");
    app.wait_final(&id).await;
    let all = operation_spans(&receiver, &id).await;
    let spans = of(&all, &id);
    let root = named(&spans, "operation order")[0];
    assert_eq!((root.parent_id.as_str(), root.kind), ("", 1), "a root of its own");
    assert_eq!(root.span_id, id[19..], "the operation's span is its id's low half");
    assert!(spans.iter().all(|s| s.trace_id == id[3..]));
    assert!(svc.calls("/a")[0].traceparent.contains(&id[3..]));
}

#[tokio::test]
async fn an_operation_keeps_its_trace_across_a_restart() {
    let receiver = Receiver::start().await;
    let svc = StepService::start().await;
    svc.on("/a", Reply::Accept);
    let flow = sequential("order", &["a", "b"], "");
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&flow], &svc, traced(&receiver)).await;
    let (op, id) = start(&app, "order", json!({}), &[("traceparent", CALLER)]).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "a")["awaiting_callback"] == true).await;
    let callback = svc.calls("/a")[0].body["callback"].clone();

    let data = app.stop().await;
    let app = spawn_app_with(data, &[&flow], &svc, traced(&receiver)).await;
    // The callback URL named the first herald's port.
    let url = callback["url"].as_str().unwrap();
    let url = app.url(&url[url.find("/v1/").unwrap()..]);
    let token = callback["token"].as_str().unwrap();
    let done = app.http.post(url).bearer_auth(token).json(&json!({"result": {}})).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(app.wait_final(&id).await["status"], "succeeded");

    let all = operation_spans(&receiver, &id).await;
    let spans = of(&all, &id);
    assert!(spans.iter().all(|s| s.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"), "{spans:#?}");
    let root = named(&spans, "operation order");
    assert_eq!(root.len(), 1, "one operation span");
    assert_eq!(root[0].span_id, op["trace"]["span_id"].as_str().unwrap());
    // The call made before the restart and the step span written after it
    // meet: the step's span id is derived, not remembered.
    let call_a = named(&spans, "call a");
    assert_eq!(call_a.len(), 1);
    assert_eq!(call_a[0].parent_id, named(&spans, "step a")[0].span_id);
    assert_eq!(named(&spans, "call b")[0].parent_id, named(&spans, "step b")[0].span_id);
}

#[tokio::test]
async fn events_carry_the_trace_and_consumers_spans_link_to_their_producers() {
    events_carry_the_trace(|_| {}).await;
}

/// The same on any broker: the context travels inside the event (see
/// `brokers.rs` for NATS and RabbitMQ).
pub(crate) async fn events_carry_the_trace(on: impl FnOnce(&mut herald_server::Config)) {
    let receiver = Receiver::start().await;
    let svc = StepService::start().await;
    let tweak = |c: &mut herald_server::Config| {
        traced(&receiver)(c);
        on(c);
    };
    let app = crate::choreography::app_with(&svc, crate::choreography::ORDER, tweak).await;
    let (_, id) = start(&app, "order", json!({"customer": "ann"}), &[("traceparent", CALLER)]).await;
    let pushed = herald_testkit::eventually("the event pushed", Duration::from_secs(10), || async {
        svc.calls("/warehouse").into_iter().next()
    })
    .await;
    app.wait_for(&id, Duration::from_secs(5), |op| step(op, "packed")["status"] == "running").await;

    // The warehouse answers from a trace of its own.
    let theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let packed = cloud_event("p1", "OrderPacked", json!({"operationid": id}));
    let resp = app.http.post(app.url("/v1/topics/warehouse/events")).header("traceparent", theirs);
    let resp = resp.header("content-type", "application/cloudevents+json").json(&packed).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let shipped = cloud_event("s1", "OrderShipped", json!({"data": {"order": id}}));
    app.publish("warehouse", &shipped).await;
    assert_eq!(app.wait_final(&id).await["status"], "succeeded");

    let done = |spans: &[Span]| {
        spans.iter().any(|s| s.name == "deliver warehouse")
            && of(spans, &id).iter().any(|s| s.name == "operation order")
    };
    let all = receiver.when("the delivery and the operation exported", Duration::from_secs(10), done).await;
    let spans = of(&all, &id);
    let announce = named(&spans, "step announce")[0];
    let produced = named(&spans, "publish orders");
    assert_eq!(produced.len(), 1, "{spans:#?}");
    let produced = produced[0];
    assert_eq!(
        (produced.kind, produced.parent_id.as_str()),
        (4, announce.span_id.as_str()),
        "a producer span of the step"
    );
    // The event carries the producer's context (CloudEvents distributed tracing).
    let carried = pushed.body["traceparent"].as_str().unwrap();
    assert_eq!(carried, format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", produced.span_id));

    let deliver = all.iter().find(|s| s.name == "deliver warehouse").unwrap();
    assert_eq!(deliver.kind, 5, "a consumer span");
    assert_eq!(
        (deliver.trace_id.as_str(), deliver.parent_id.as_str()),
        (produced.trace_id.as_str(), produced.span_id.as_str())
    );
    assert!(deliver.links.contains(&(produced.trace_id.clone(), produced.span_id.clone())), "{:?}", deliver.links);
    // The subscriber's own span would be the child of herald's delivery span.
    assert_eq!(&pushed.traceparent[3..35], produced.trace_id);
    assert_eq!(&pushed.traceparent[36..52], deliver.span_id);

    // The answer published through the API: a producer span under the
    // warehouse's span, and the step that awaited it links to it.
    let api_publish =
        all.iter().find(|s| s.name == "publish warehouse" && s.trace_id == "0af7651916cd43dd8448eb211c80319c");
    let api_publish = api_publish.expect("the API's producer span, in the warehouse's trace");
    assert_eq!(api_publish.parent_id, "b7ad6b7169203331");
    let awaited = named(&spans, "step packed")[0];
    assert_eq!(awaited.links, vec![(api_publish.trace_id.clone(), api_publish.span_id.clone())]);
}

#[tokio::test]
async fn a_malformed_traceparent_extension_is_refused_and_nothing_is_stored() {
    let svc = StepService::start().await;
    let app = spawn_app(&[], &svc).await;
    let bad = cloud_event("x1", "T", json!({"traceparent": "00-zz-00-01"}));
    let resp = app.publish("anything", &bad).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("traceparent"), "{problem}");
    let good = cloud_event("x1", "T", json!({}));
    let stored: serde_json::Value = app.publish("anything", &good).await.json().await.unwrap();
    assert_eq!(stored["events"][0]["duplicate"], false, "the refused event was not stored: {stored}");
}

#[tokio::test]
async fn notifications_are_spans_of_the_operation_and_no_span_holds_a_secret_or_the_input() {
    let receiver = Receiver::start().await;
    let svc = StepService::start().await;
    svc.on("/a", Reply::Accept);
    let notify = "subject = \"/user\"\n[notify]\non = [\"succeeded\"]\nchannels = [\"inbox\", \"webhook\"]";
    let flow = sequential("order", &["a"], notify);
    let secret = "webhook-secret-0123456789";
    let hook = format!("{}/hook?key=in-the-query", svc.url);
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&flow], &svc, |c| {
        traced(&receiver)(c);
        c.webhook = Some(herald_server::config::WebhookConfig {
            url: hook,
            secret: secret.into(),
            timeout: None,
            retry: None,
            circuit: None,
        });
    })
    .await;
    let input = json!({"user": "ann@example.com", "card": "4242424242424242"});
    let id = app.start_id("order", input).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "a")["awaiting_callback"] == true).await;
    let callback = svc.calls("/a")[0].body["callback"].clone();
    let token = callback["token"].as_str().unwrap().to_string();
    let done = app.http.post(callback["url"].as_str().unwrap()).bearer_auth(&token).json(&json!({"result": {}}));
    assert_eq!(done.send().await.unwrap().status(), 200);
    app.wait_final(&id).await;

    let sent = |spans: &[Span]| of(spans, &id).iter().any(|s| s.name == "notify webhook");
    let all = receiver.when("the webhook's span exported", Duration::from_secs(10), sent).await;
    let spans = of(&all, &id);
    let root = named(&spans, "operation order")[0];
    let webhook = named(&spans, "notify webhook")[0];
    assert_eq!((webhook.kind, webhook.parent_id.as_str()), (3, root.span_id.as_str()));
    assert_eq!(named(&spans, "notify inbox")[0].parent_id, root.span_id);
    let delivered = svc.calls("/hook");
    assert_eq!(&delivered[0].traceparent[36..52], webhook.span_id, "the receiver's span would be its child");

    for s in &all {
        for (k, v) in &s.attributes {
            for never in [secret, token.as_str(), "ann@example.com", "4242424242424242", "in-the-query"] {
                assert!(!v.contains(never), "span {} attribute {k} holds {never}", s.name);
            }
        }
    }
}

#[tokio::test]
async fn a_gateway_request_is_a_server_span_under_its_caller_and_the_instance_gets_its_child() {
    let receiver = Receiver::start().await;
    let svc = StepService::start().await;
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[], &svc, traced(&receiver)).await;
    let resp = app.http.get(app.url("/gw/svc/catalog?page=2")).header("traceparent", CALLER).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app.http.get(app.url("/gw/svc/catalog")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let unknown = app.http.get(app.url("/gw/nobody/x")).header("traceparent", CALLER).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    let all = receiver
        .when("three gateway spans", Duration::from_secs(10), |s| {
            s.iter().filter(|s| s.name.starts_with("GET /gw/")).count() == 3
        })
        .await;
    let calls = svc.calls("/catalog");
    assert_eq!(calls.len(), 2);
    let joined =
        all.iter().find(|s| s.name == "GET /gw/svc" && s.parent_id == "00f067aa0ba902b7").expect("under the caller");
    assert_eq!((joined.kind, joined.trace_id.as_str()), (2, "4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(joined.attributes["http.response.status_code"], "200");
    assert_eq!(calls[0].traceparent, format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", joined.span_id));
    let own = all.iter().find(|s| s.name == "GET /gw/svc" && s.parent_id.is_empty()).expect("a root of its own");
    assert_eq!(&calls[1].traceparent[3..35], own.trace_id);
    assert_eq!(&calls[1].traceparent[36..52], own.span_id);
    let refused = all.iter().find(|s| s.name == "GET /gw/nobody").unwrap();
    assert_eq!(refused.attributes["http.response.status_code"], "404");
    assert!(all.iter().all(|s| !s.attributes.values().any(|v| v.contains("page=2"))), "no query in a span");
}

#[tokio::test]
async fn a_compensation_is_a_span_of_its_own_holding_its_calls() {
    let receiver = Receiver::start().await;
    let svc = StepService::start().await;
    svc.on("/b", Reply::Status(422, "out of stock"));
    let flow = sequential("order", &["a", "b"], "");
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&flow], &svc, traced(&receiver)).await;
    let (_, id) = start(&app, "order", json!({}), &[]).await;
    assert_eq!(app.wait_final(&id).await["status"], "failed");

    let all = operation_spans(&receiver, &id).await;
    let spans = of(&all, &id);
    let root = named(&spans, "operation order")[0];
    assert!(root.error, "a failed operation's span is an error");
    assert!(named(&spans, "step b")[0].error);
    let undo = named(&spans, "compensate a");
    assert_eq!(undo.len(), 1, "{spans:#?}");
    assert_eq!(undo[0].parent_id, root.span_id);
    let calls = named(&spans, "call a");
    let undoing: Vec<_> = calls.iter().filter(|c| c.attributes["herald.phase"] == "compensation").collect();
    assert_eq!(undoing.len(), 1, "{calls:#?}");
    assert_eq!(undoing[0].parent_id, undo[0].span_id);
    let undo_call = svc.calls("/a/undo");
    assert_eq!(&undo_call[0].traceparent[36..52], undoing[0].span_id);
}
