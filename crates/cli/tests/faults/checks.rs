//! What each operation of the run is meant to do, and the check that it
//! did: its final state, its timeline, and the services' ledger agreeing.

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;

use crate::services::Ledger;

#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// reserve, charge (declined when `fail`), announce (publish), confirm
    /// (by callback); compensations for reserve and charge.
    Order { fail: bool },
    /// Waits for its parcel's event (8 s at most), then delivers; the
    /// event is published only when `parcel`.
    Ship { parcel: bool },
}

impl Plan {
    pub fn workflow(self) -> &'static str {
        match self {
            Plan::Order { .. } => "order",
            Plan::Ship { .. } => "ship",
        }
    }

    pub fn fails(self) -> bool {
        matches!(self, Plan::Order { fail: true })
    }
}

/// The plan of the run's `i`th operation: three in four are orders, one in
/// eight of them declined; of the shipments, four in five get their parcel.
pub fn plan(seed: u64, i: usize) -> Plan {
    let mut rng = StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    if rng.random_bool(0.75) {
        Plan::Order { fail: rng.random_bool(0.125) }
    } else {
        Plan::Ship { parcel: rng.random_bool(0.8) }
    }
}

/// How many timeline entries of `kind` name `step`.
fn count(op: &Value, kind: &str, step: &str) -> usize {
    op["timeline"].as_array().map_or(0, |t| t.iter().filter(|e| e["type"] == kind && e["step"] == step).count())
}

/// The timeline in short: each entry's type, step and time.
fn summary(op: &Value) -> String {
    let entries = op["timeline"].as_array().into_iter().flatten();
    let line = |e: &Value| {
        format!(
            "{} {} {}",
            e["at"].as_str().unwrap_or(""),
            e["type"].as_str().unwrap_or(""),
            e["step"].as_str().unwrap_or("")
        )
    };
    entries.map(line).collect::<Vec<_>>().join("; ")
}

/// What is wrong with operation `id`, run to `plan`: `published`, its
/// parcel's event answered 2xx; `in_time`, soon enough to beat the await.
pub fn check(id: &str, plan: Plan, op: &Value, ledger: &Ledger, published: bool, in_time: bool) -> Vec<String> {
    let mut wrong = Vec::new();
    let status = op["status"].as_str().unwrap_or_default();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            wrong.push(format!("{id} ({plan:?}, {status}): {what}"));
        }
    };
    let key = |step: &str| format!("{id}/{step}");
    let undo = |step: &str| format!("{id}/{step}/compensate");
    let steps: &[&str] = match plan {
        Plan::Order { .. } => &["reserve", "charge", "announce", "confirm"],
        Plan::Ship { .. } => &["wait", "deliver"],
    };
    for step in steps {
        for kind in ["step_succeeded", "step_failed", "step_compensated"] {
            expect(count(op, kind, step) <= 1, &format!("{kind} of {step} recorded more than once"));
        }
    }
    expect(op["needs_attention"] == false, "needs a person");
    let succeeded = |step: &str| count(op, "step_succeeded", step) == 1;
    let undone = |step: &str| count(op, "step_compensated", step) == 1;
    match plan {
        Plan::Order { fail: false } => {
            expect(status == "succeeded", "did not succeed");
            for step in ["reserve", "charge", "announce", "confirm"] {
                expect(succeeded(step), &format!("{step} not recorded as succeeded"));
            }
            for step in ["reserve", "charge"] {
                expect(ledger.took_effect(&key(step), false), &format!("{step} never took effect"));
                expect(!ledger.called(&undo(step)), &format!("{step} was undone"));
            }
            expect(ledger.took_effect(&key("confirm"), true), "confirm never completed by its callback");
        }
        Plan::Order { fail: true } => {
            expect(status == "failed", "did not fail");
            expect(succeeded("reserve") && undone("reserve"), "reserve not recorded done and undone");
            expect(ledger.took_effect(&key("reserve"), false), "reserve never took effect");
            expect(ledger.took_effect(&undo("reserve"), false), "reserve's undo never took effect");
            expect(!ledger.took_effect(&key("charge"), false), "the declined charge took effect");
            expect(!ledger.called(&undo("charge")), "the declined charge was undone");
            expect(!ledger.called(&key("confirm")), "a failed order was confirmed");
        }
        Plan::Ship { .. } if status == "succeeded" => {
            expect(published, "waited without its event, and went on");
            expect(succeeded("wait") && succeeded("deliver"), "wait or deliver not recorded as succeeded");
            expect(ledger.took_effect(&key("deliver"), false), "deliver never took effect");
        }
        Plan::Ship { .. } => {
            expect(status == "failed", "neither succeeded nor failed");
            expect(!in_time, &format!("its event came in time, and it failed: {}", summary(op)));
            expect(count(op, "step_failed", "wait") == 1, "failed other than by the await's timeout");
            expect(!ledger.called(&key("deliver")), "delivered without its parcel");
        }
    }
    wrong
}
