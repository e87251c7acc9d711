//! The demo order's trace, as an OTLP collector receives it: one trace
//! from the caller's span through every step, the inventory's outbox
//! event made in herald's client span for its call, and analytics'
//! deliveries linked to the spans that produced the events.

mod common;

use std::time::Duration;

use common::{client, demo, herald_with};
use herald_testkit::otlp::{Receiver, Span};
use serde_json::{Value, json};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn the_demo_order_is_one_trace_and_analytics_deliveries_link_to_their_producers() {
    let receiver = Receiver::start().await;
    let (started, http) = (demo().await, client());
    let demo = &started.demo;
    let (url, _herald) = herald_with(started.dir.path(), demo, |config| {
        for (name, definition) in herald_demo::subscriptions() {
            config.subscriptions.insert(name.to_string(), serde_json::from_value(definition).expect("a subscription"));
        }
        config.tracing.enabled = true;
        config.tracing.endpoint = Some(receiver.endpoint.clone());
        config.tracing.batch_delay = Some(Duration::from_millis(50));
    })
    .await;
    demo.start_relay(&url);

    let order = json!({ "customer": "gina", "items": [{ "sku": "tea", "qty": 1 }], "card": "4242424242424242" });
    let resp = http.post(format!("{url}/v1/workflows/place-order/operations")).header("traceparent", CALLER);
    let op: Value = resp.header("prefer", "wait=20").json(&order).send().await.unwrap().json().await.unwrap();
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let id = op["id"].as_str().unwrap().to_string();

    let delivered = |spans: &[Span], sub: &str| spans.iter().any(|s| s.name == format!("deliver {sub}"));
    let all = receiver
        .when("both deliveries and the operation exported", Duration::from_secs(20), |s| {
            delivered(s, "analytics-orders")
                && delivered(s, "analytics-inventory")
                && s.iter().any(|s| s.name == "operation place-order")
        })
        .await;
    let ours: Vec<&Span> = all
        .iter()
        .filter(|s| s.attributes.get("herald.operation.id").map(String::as_str) == Some(id.as_str()))
        .collect();
    assert!(ours.len() >= 10, "{ours:#?}");
    assert!(ours.iter().all(|s| s.trace_id == TRACE), "one trace, the caller's");
    let span =
        |name: &str| *ours.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name}: {ours:#?}"));
    let root = span("operation place-order");
    assert_eq!(root.parent_id, "00f067aa0ba902b7");
    for step in ["reserve-inventory", "charge-payment", "send-confirmation"] {
        let (phase, call) = (span(&format!("step {step}")), span(&format!("call {step}")));
        assert_eq!(phase.parent_id, root.span_id, "{step}");
        assert_eq!((call.kind, call.parent_id.as_str()), (3, phase.span_id.as_str()), "{step}: a client span");
    }

    // The inventory made its event in the call herald traced: the outbox
    // row kept that context, and analytics' delivery links to it.
    let reserve_call = span("call reserve-inventory");
    let inventory = all.iter().find(|s| s.name == "deliver analytics-inventory").unwrap();
    assert!(inventory.links.contains(&(TRACE.to_string(), reserve_call.span_id.clone())), "{inventory:#?}");
    assert_eq!((inventory.kind, inventory.parent_id.as_str()), (5, reserve_call.span_id.as_str()));
    // herald's own publish step: a producer span, and the delivery its child.
    let produced = span("publish orders");
    assert_eq!((produced.kind, produced.parent_id.as_str()), (4, span("step announce-order").span_id.as_str()));
    let orders = all.iter().find(|s| s.name == "deliver analytics-orders").unwrap();
    assert!(orders.links.contains(&(TRACE.to_string(), produced.span_id.clone())), "{orders:#?}");
}
