//! Work that fails for good and waits for a person: a held step, a
//! compensation that could not be done, and what redriving them does.

use super::*;

const HELD: &str = r#"
name = "delete-account"
[[steps]]
name = "erase-logs"
call = { service = "logs", path = "/erase" }
compensate = { service = "logs", path = "/restore" }
[[steps]]
name = "erase-audit"
call = { service = "audit", path = "/erase" }
retry = { attempts = 2, initial = "100ms", max = "1s" }
on_failure = "hold"
"#;

fn exhaust(sim: &mut Sim, step: &str, attempts: u32) {
    for _ in 0..attempts {
        sim.answer(step, Phase::Forward, fail(true));
    }
}

#[test]
fn a_step_that_fails_for_good_holds_its_operation_and_is_dead_lettered() {
    let mut sim = Sim::new(HELD);
    sim.answer("erase-logs", Phase::Forward, done());
    let mut letters = Vec::new();
    for _ in 0..2 {
        let task = sim.take(|k| matches!(k, TaskKind::Invoke { step, .. } if step == "erase-audit")).unwrap();
        let TaskKind::Invoke { attempt, .. } = task.kind else { unreachable!() };
        if check_invoke(&sim.op, "erase-audit", attempt, Phase::Forward) == InvokeCheck::Begin {
            sim.apply(Command::AttemptStarted { step: "erase-audit".into(), attempt, phase: Phase::Forward }).unwrap();
        }
        let tr = apply(
            &mut sim.op,
            &sim.wf,
            Command::Result {
                step: "erase-audit".into(),
                attempt,
                phase: Phase::Forward,
                outcome: fail(true),
                sample: 0.5,
            },
            sim.now,
        )
        .unwrap();
        letters.extend(tr.dead_letters.clone());
        sim.record(tr);
    }

    assert_eq!(sim.status("erase-audit"), StepState::Held);
    assert_eq!(sim.op.status, OpStatus::Running, "held, not undone");
    assert!(sim.op.needs_attention);
    assert_eq!(sim.status("erase-logs"), StepState::Succeeded, "nothing was undone");
    assert_eq!(
        letters,
        [StepLetter { step: "erase-audit".into(), phase: Phase::Forward, attempts: 2, error: "boom".into() }]
    );
    assert!(sim.kinds().contains(&"step_held".to_string()));
}

#[test]
fn redriving_a_held_step_gives_it_a_new_round_of_attempts() {
    let mut sim = Sim::new(HELD);
    sim.answer("erase-logs", Phase::Forward, done());
    exhaust(&mut sim, "erase-audit", 2);
    assert_eq!(sim.status("erase-audit"), StepState::Held);

    sim.apply(Command::Redrive { step: "erase-audit".into(), phase: Phase::Forward }).unwrap();
    assert_eq!(sim.status("erase-audit"), StepState::Running);
    assert!(!sim.op.needs_attention, "a person took it up");
    sim.answer("erase-audit", Phase::Forward, fail(true));
    assert_eq!(sim.status("erase-audit"), StepState::Retrying, "a fresh round: not exhausted after one attempt");
    sim.answer("erase-audit", Phase::Forward, done());

    assert_eq!(sim.op.status, OpStatus::Succeeded);
    assert_eq!(sim.op.step("erase-audit").unwrap().1.attempts, 4, "attempts keep counting across rounds");
    assert!(sim.kinds().contains(&"step_redriven".to_string()));
    assert_eq!(
        sim.apply(Command::Redrive { step: "erase-audit".into(), phase: Phase::Forward }),
        Err(Rejection::NotHeld("erase-audit".into())),
        "nothing to redrive once it is done"
    );
}

#[test]
fn cancelling_a_held_operation_undoes_it_and_resolves_the_dead_letter() {
    let mut sim = Sim::new(HELD);
    sim.answer("erase-logs", Phase::Forward, done());
    exhaust(&mut sim, "erase-audit", 2);

    let tr = apply(&mut sim.op, &sim.wf, Command::Cancel { reason: "given up".into() }, sim.now).unwrap();
    assert_eq!(tr.resolved, [("erase-audit".to_string(), Phase::Forward)]);
    sim.record(tr);
    sim.answer("erase-logs", Phase::Compensation, done());

    assert_eq!(sim.op.status, OpStatus::Cancelled);
    assert!(!sim.op.needs_attention);
}

#[test]
fn redriving_a_failed_compensation_reopens_the_operation_and_rewrites_its_outcome() {
    let mut sim = Sim::new(
        r#"
name = "w"
[[steps]]
name = "reserve"
call = { service = "inventory", path = "/reserve" }
compensate = { service = "inventory", path = "/release" }
retry = { attempts = 1 }
[[steps]]
name = "charge"
call = { service = "payment", path = "/charge" }
"#,
    );
    sim.answer("reserve", Phase::Forward, done());
    sim.answer("charge", Phase::Forward, fail(false));
    let task = sim.take(|k| matches!(k, TaskKind::Invoke { phase: Phase::Compensation, .. })).unwrap();
    let tr = apply(
        &mut sim.op,
        &sim.wf,
        Command::Result {
            step: "reserve".into(),
            attempt: 1,
            phase: Phase::Compensation,
            outcome: fail(true),
            sample: 0.5,
        },
        sim.now.max(task.due),
    )
    .unwrap();
    assert_eq!(tr.dead_letters.len(), 1);
    assert_eq!(tr.dead_letters[0].phase, Phase::Compensation);
    sim.record(tr);
    assert_eq!((sim.op.status, sim.op.needs_attention), (OpStatus::Failed, true));

    sim.apply(Command::Redrive { step: "reserve".into(), phase: Phase::Compensation }).unwrap();
    assert_eq!(sim.op.status, OpStatus::Compensating, "reopened while it is undone again");
    sim.answer("reserve", Phase::Compensation, done());

    assert_eq!(sim.op.status, OpStatus::Failed);
    assert!(!sim.op.needs_attention, "nothing is left for a person");
    let outcome = sim.op.outcome.as_ref().unwrap();
    assert_eq!(outcome.undone.len(), 1);
    assert!(outcome.not_undone.is_empty());
}
