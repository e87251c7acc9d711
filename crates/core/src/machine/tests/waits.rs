//! Steps whose calls could not be sent wait for their service: no attempt
//! is spent, the user is told once, and the timers still apply.

use super::*;

const AUDIT: &str = r#"
name = "delete-account"
[[steps]]
name = "erase-logs"
call = { service = "logs", path = "/erase" }
compensate = { service = "logs", path = "/restore" }
[[steps]]
name = "erase-audit"
call = { service = "audit", path = "/erase" }
retry = { attempts = 2, initial = "100ms", max = "1s" }
expected_within = "2s"
deadline = "1m"
"#;

/// What the engine does when `step`'s pending invocation cannot be sent:
/// the same task stays, to be tried again later.
fn refuse(sim: &mut Sim, step: &str, phase: Phase) {
    let attempt = sim
        .tasks
        .iter()
        .find_map(|t| match &t.kind {
            TaskKind::Invoke { step: s, attempt, phase: p } if s == step && *p == phase => Some(*attempt),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no invocation of {step} pending"));
    sim.apply(Command::Wait { step: step.into(), attempt, phase, service: "audit".into() }).unwrap();
}

/// [`Act::Wait`] of the property test: the n-th pending invocation is
/// refused twice; the second refusal changes nothing, and neither spends
/// an attempt.
pub(super) fn unsent(sim: &mut Sim, i: usize) {
    let invokes: Vec<(String, u32, Phase)> = sim
        .tasks
        .iter()
        .filter_map(|t| match &t.kind {
            TaskKind::Invoke { step, attempt, phase } => Some((step.clone(), *attempt, *phase)),
            _ => None,
        })
        .collect();
    let Some((step, attempt, phase)) = invokes.get(i % invokes.len().max(1)).cloned() else { return };
    if check_invoke(&sim.op, &step, attempt, phase) == InvokeCheck::Stale {
        return;
    }
    // The attempts of the phase that waited (an operation winding down
    // may start other work meanwhile).
    let spent = |sim: &Sim| {
        let s = sim.op.step(&step).unwrap().1;
        match phase {
            Phase::Forward => s.attempts,
            Phase::Compensation => s.compensation.as_ref().map_or(0, |c| c.attempts),
        }
    };
    let before = spent(sim);
    let wait = Command::Wait { step: step.clone(), attempt, phase, service: "x".into() };
    sim.apply(wait.clone()).unwrap();
    let events = sim.events.len();
    sim.apply(wait).unwrap();
    assert_eq!(sim.events.len(), events, "a second refusal tells nothing new");
    let after = spent(sim);
    assert!(after <= before, "a wait spent an attempt: {before} → {after}");
}

fn waits_told(sim: &Sim) -> usize {
    sim.events.iter().filter(|e| matches!(e.kind, EventKind::StepWaiting { .. })).count()
}

#[test]
fn a_refused_first_attempt_waits_told_once_and_spends_nothing() {
    let mut sim = Sim::new(AUDIT);
    sim.answer("erase-logs", Phase::Forward, done());
    for _ in 0..10 {
        refuse(&mut sim, "erase-audit", Phase::Forward);
    }
    let s = sim.op.step("erase-audit").unwrap().1;
    assert_eq!((s.status, s.attempts), (StepState::Waiting, 0));
    assert_eq!(s.waiting_for.as_deref(), Some("audit"));
    assert_eq!(waits_told(&sim), 1, "told once, not once per check");
    let told = sim.events.last().unwrap();
    assert_eq!(told.message, "Erase audit: waiting for the audit service");

    // Its turn comes: the first attempt goes, then the two the policy allows.
    sim.answer("erase-audit", Phase::Forward, fail(true));
    assert_eq!(sim.status("erase-audit"), StepState::Retrying, "one real attempt spent of two");
    sim.answer("erase-audit", Phase::Forward, done());
    assert_eq!(sim.op.status, OpStatus::Succeeded);
    assert_eq!(sim.op.step("erase-audit").unwrap().1.attempts, 2);
    assert_eq!(sim.op.step("erase-audit").unwrap().1.waiting_for, None);
}

#[test]
fn a_retry_whose_service_refuses_waits_and_keeps_its_attempts() {
    let mut sim = Sim::new(AUDIT);
    sim.answer("erase-logs", Phase::Forward, done());
    sim.answer("erase-audit", Phase::Forward, fail(true));
    for _ in 0..5 {
        refuse(&mut sim, "erase-audit", Phase::Forward);
    }
    let s = sim.op.step("erase-audit").unwrap().1;
    assert_eq!((s.status, s.attempts, s.next_attempt_at), (StepState::Waiting, 1, None));
    sim.answer("erase-audit", Phase::Forward, done());
    assert_eq!(sim.op.status, OpStatus::Succeeded, "the second attempt was still there to spend");
}

#[test]
fn a_waiting_step_is_late_then_ends_at_its_deadline_with_nothing_to_undo_of_its_own() {
    let mut sim = Sim::new(AUDIT);
    sim.answer("erase-logs", Phase::Forward, done());
    refuse(&mut sim, "erase-audit", Phase::Forward);
    sim.apply(Command::Timer(Timer::StepExpected { step: "erase-audit".into() })).unwrap();
    assert!(sim.op.step("erase-audit").unwrap().1.delayed, "taking longer than usual, while waiting");
    sim.apply(Command::Timer(Timer::StepDeadline { step: "erase-audit".into() })).unwrap();
    let s = sim.op.step("erase-audit").unwrap().1;
    assert_eq!(s.status, StepState::Failed);
    assert!(!s.maybe_applied, "nothing was sent");
    assert_eq!(sim.op.status, OpStatus::Compensating);
    sim.answer("erase-logs", Phase::Compensation, done());
    assert_eq!(sim.op.status, OpStatus::Failed);
    let stale = sim.take(|k| matches!(k, TaskKind::Invoke { step, .. } if step == "erase-audit")).unwrap();
    let TaskKind::Invoke { attempt, .. } = stale.kind else { unreachable!() };
    assert_eq!(check_invoke(&sim.op, "erase-audit", attempt, Phase::Forward), InvokeCheck::Stale);
}

#[test]
fn an_unsent_call_of_an_operation_being_undone_is_dropped_at_once() {
    let mut sim = Sim::new(AUDIT);
    sim.answer("erase-logs", Phase::Forward, done());
    sim.apply(Command::Cancel { reason: "changed my mind".into() }).unwrap();
    assert_eq!(sim.status("erase-audit"), StepState::Running, "its call may be in flight: the undo waits");
    refuse(&mut sim, "erase-audit", Phase::Forward);
    assert_eq!(sim.status("erase-audit"), StepState::Failed, "it was never sent: nothing to wait for");
    assert_eq!(sim.status("erase-logs"), StepState::Compensating, "undoing began");
}

#[test]
fn a_compensation_waits_for_its_service_told_once() {
    let mut sim = Sim::new(AUDIT);
    sim.answer("erase-logs", Phase::Forward, done());
    sim.answer("erase-audit", Phase::Forward, fail(false));
    for _ in 0..3 {
        refuse(&mut sim, "erase-logs", Phase::Compensation);
    }
    let s = sim.op.step("erase-logs").unwrap().1;
    assert_eq!(s.compensation.as_ref().unwrap().attempts, 0);
    assert_eq!(waits_told(&sim), 1);
    sim.answer("erase-logs", Phase::Compensation, done());
    assert_eq!(sim.status("erase-logs"), StepState::Compensated);
    assert_eq!(sim.op.step("erase-logs").unwrap().1.compensation.as_ref().unwrap().attempts, 1);
    assert_eq!(sim.op.status, OpStatus::Failed);
}

#[test]
fn a_retry_after_longer_than_the_backoff_sets_the_next_attempt() {
    let mut sim = Sim::new(AUDIT);
    sim.answer("erase-logs", Phase::Forward, done());
    let busy = Outcome::Failed {
        error: "busy".into(),
        retryable: true,
        maybe_applied: false,
        retry_after: Some(std::time::Duration::from_secs(30)),
    };
    let asked = sim.now;
    sim.answer("erase-audit", Phase::Forward, busy);
    let next = sim.op.step("erase-audit").unwrap().1.next_attempt_at.unwrap();
    assert_eq!(next - asked, chrono::Duration::seconds(30), "the policy alone would wait 100 ms");
}

#[test]
fn a_try_out_of_a_wait_that_cannot_connect_waits_again_without_telling_twice() {
    let mut sim = Sim::new(AUDIT);
    sim.answer("erase-logs", Phase::Forward, done());
    refuse(&mut sim, "erase-audit", Phase::Forward);
    for _ in 0..3 {
        // Its turn comes (a probe of a circuit, say), the attempt begins,
        // and no connection can be made.
        let task = sim.tasks.iter().find(|t| matches!(&t.kind, TaskKind::Invoke { step, .. } if step == "erase-audit"));
        let TaskKind::Invoke { attempt, .. } = task.unwrap().kind.clone() else { unreachable!() };
        assert_eq!(check_invoke(&sim.op, "erase-audit", attempt, Phase::Forward), InvokeCheck::Begin);
        sim.apply(Command::AttemptStarted { step: "erase-audit".into(), attempt, phase: Phase::Forward }).unwrap();
        refuse(&mut sim, "erase-audit", Phase::Forward);
        assert_eq!(sim.status("erase-audit"), StepState::Waiting);
    }
    assert_eq!(waits_told(&sim), 1, "told once for the whole wait");
    let started = |sim: &Sim| {
        sim.events
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::StepStarted { step, .. } if step == "erase-audit"))
            .count()
    };
    assert_eq!(started(&sim), 1, "tries that could not connect are not news");
    sim.answer("erase-audit", Phase::Forward, fail(true));
    assert_eq!(started(&sim), 2, "the try that got an answer is told, with it");
    refuse(&mut sim, "erase-audit", Phase::Forward);
    assert_eq!(waits_told(&sim), 2, "after a real answer, a new wait is news again");
}
