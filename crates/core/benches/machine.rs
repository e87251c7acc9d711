//! Micro-benchmarks of the pure core: parsing a workflow file, and running
//! one operation of the order saga through the state machine.
//! `cargo bench -p herald-core`

use criterion::{Criterion, criterion_group, criterion_main};
use herald_core::{Command, OperationId, Outcome, machine, task::Phase, workflow};
use serde_json::json;

const ORDER: &str = r#"
name = "order"
label = "Your order"
[[steps]]
name = "reserve_inventory"
call = { service = "worker", path = "/reserve" }
compensate = { service = "worker", path = "/release" }
[[steps]]
name = "charge_payment"
call = { service = "worker", path = "/charge" }
retry = { attempts = 5, initial = "200ms", max = "5s" }
[[steps]]
name = "send_confirmation"
call = { service = "worker", path = "/confirm" }
"#;

fn parse(c: &mut Criterion) {
    c.bench_function("parse the order workflow (TOML)", |b| b.iter(|| workflow::from_toml(ORDER).unwrap()));
}

fn saga(c: &mut Criterion) {
    let wf = workflow::from_toml(ORDER).unwrap();
    let now = chrono::Utc::now();
    c.bench_function("run an order saga through the state machine", |b| {
        b.iter(|| {
            let (mut op, _) = machine::accept(
                &wf,
                OperationId::new(now, [1; 10]),
                json!({"n": 1}),
                None,
                None,
                &Default::default(),
                now,
            );
            for step in ["reserve_inventory", "charge_payment", "send_confirmation"] {
                let cmd = Command::Result {
                    step: step.into(),
                    attempt: 1,
                    phase: Phase::Forward,
                    outcome: Outcome::Done(json!({"ok": true})),
                    sample: 0.5,
                };
                machine::apply(&mut op, &wf, cmd, now).unwrap();
            }
            assert!(op.is_final());
            op
        })
    });
    let (op, _) =
        machine::accept(&wf, OperationId::new(now, [1; 10]), json!({"n": 1}), None, None, &Default::default(), now);
    let stored = serde_json::to_string(&op).unwrap();
    c.bench_function("load a stored operation (JSON)", |b| {
        b.iter(|| serde_json::from_str::<herald_core::Operation>(&stored).unwrap())
    });
}

criterion_group!(benches, parse, saga);
criterion_main!(benches);
