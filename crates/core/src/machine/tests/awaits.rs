//! `publish` and `await` steps: an event names its operation and completes
//! the step waiting for it, even when it comes before the step begins.

use serde_json::{Value, json};

use super::*;

const CHOREOGRAPHY: &str = r#"
name = "ship"
[[steps]]
name = "announce"
publish = { topic = "orders", type = "OrderPlaced" }
[[steps]]
name = "packed"
await = { topic = "warehouse", type = "OrderPacked", timeout = "1h" }
[[steps]]
name = "shipped"
await = { topic = "warehouse", type = "OrderShipped", match = "/order", timeout = "1h", on_timeout = "skip" }
"#;

fn event(kind: &str, extra: Value) -> Value {
    let mut e = json!({"specversion": "1.0", "id": "x", "source": "/w", "type": kind});
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn arrive(sim: &mut Sim, topic: &str, e: Value) {
    sim.apply(Command::EventArrived { topic: topic.into(), event: e }).unwrap();
}

#[test]
fn a_publish_step_is_invoked_like_a_call_and_an_await_step_waits_for_its_event() {
    let mut sim = Sim::new(CHOREOGRAPHY);
    let id = sim.op.id.to_string();
    sim.answer("announce", Phase::Forward, done());
    assert_eq!(sim.status("packed"), StepState::Running);
    assert!(sim.op.step("packed").unwrap().1.awaiting_callback);
    assert!(
        !sim.tasks.iter().any(|t| matches!(&t.kind, TaskKind::Invoke { step, .. } if step == "packed")),
        "nothing is called for an await step"
    );

    arrive(&mut sim, "warehouse", event("OrderPacked", json!({"operationid": "op_someone_else"})));
    arrive(&mut sim, "other-topic", event("OrderPacked", json!({"operationid": id})));
    assert_eq!(sim.status("packed"), StepState::Running, "events for others, or on other topics, change nothing");

    arrive(&mut sim, "warehouse", event("OrderPacked", json!({"operationid": id, "data": {"box": 7}})));
    assert_eq!(sim.status("packed"), StepState::Succeeded);
    assert_eq!(sim.op.step("packed").unwrap().1.result.as_ref().unwrap()["data"]["box"], 7, "the event is the result");

    arrive(&mut sim, "warehouse", event("OrderShipped", json!({"data": {"order": id}})));
    assert_eq!(sim.op.status, OpStatus::Succeeded, "matched by the pointer into the data");
}

#[test]
fn an_event_that_comes_early_is_kept_until_its_step_begins() {
    let mut sim = Sim::new(CHOREOGRAPHY);
    let id = sim.op.id.to_string();
    let before = sim.events.len();

    arrive(&mut sim, "warehouse", event("OrderShipped", json!({"data": {"order": id}})));
    assert_eq!(sim.events.len(), before, "nothing to tell the user yet");
    assert!(sim.op.step("shipped").unwrap().1.received.is_some());
    sim.answer("announce", Phase::Forward, done());
    arrive(&mut sim, "warehouse", event("OrderPacked", json!({"operationid": id})));

    assert_eq!(sim.op.status, OpStatus::Succeeded, "the kept event completed the last step at once");
}

#[test]
fn an_await_that_times_out_fails_or_is_skipped_as_its_definition_says() {
    let mut sim = Sim::new(CHOREOGRAPHY);
    let id = sim.op.id.to_string();
    sim.answer("announce", Phase::Forward, done());
    arrive(&mut sim, "warehouse", event("OrderPacked", json!({"operationid": id})));
    let timer = sim.take(|k| matches!(k, TaskKind::Timer { timer: Timer::AwaitTimeout { step } } if step == "shipped"));
    sim.apply(Command::Timer(Timer::AwaitTimeout { step: "shipped".into() })).unwrap();
    assert!(timer.is_some());
    assert_eq!(sim.status("shipped"), StepState::Skipped);
    assert_eq!(sim.op.status, OpStatus::Succeeded, "a skipped step lets the workflow finish");

    let mut sim = Sim::new(CHOREOGRAPHY);
    sim.answer("announce", Phase::Forward, done());
    sim.apply(Command::Timer(Timer::AwaitTimeout { step: "packed".into() })).unwrap();
    assert_eq!(sim.status("packed"), StepState::Failed);
    assert_eq!(sim.op.status, OpStatus::Failed);
    assert!(sim.op.step("packed").unwrap().1.error.as_ref().unwrap().contains("nothing arrived within 1h"));
}

#[test]
fn a_publish_compensation_is_invoked_when_undoing() {
    let mut sim = Sim::new(
        r#"
name = "w"
[[steps]]
name = "announce"
publish = { topic = "orders", type = "OrderPlaced" }
compensate = { topic = "orders", type = "OrderWithdrawn" }
[[steps]]
name = "charge"
call = { service = "payment", path = "/charge" }
"#,
    );
    sim.answer("announce", Phase::Forward, done());
    sim.answer("charge", Phase::Forward, fail(false));
    sim.answer("announce", Phase::Compensation, done());
    assert_eq!(sim.status("announce"), StepState::Compensated);
    assert_eq!(sim.op.status, OpStatus::Failed);
}
