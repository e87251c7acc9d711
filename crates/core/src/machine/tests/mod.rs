//! The state machine driven by hand (scenarios) and at random (properties).

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::{
    OpStatus,
    operation::StepState,
    task::{Phase, TaskKind, TaskSpec, Timer},
    timeline::EventKind,
    workflow,
};

fn t0() -> Time {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// An operation and the tasks it has asked for, driven without IO.
struct Sim {
    wf: Workflow,
    op: Operation,
    tasks: Vec<TaskSpec>,
    events: Vec<Event>,
    now: Time,
}

impl Sim {
    fn new(toml: &str) -> Sim {
        let wf = workflow::from_toml(toml).unwrap();
        let now = t0();
        let (op, tr) = accept(&wf, OperationId::new(now, [0; 10]), json!({}), None, None, &Default::default(), now);
        let mut sim = Sim { wf, op, tasks: vec![], events: vec![], now };
        sim.record(tr);
        sim
    }

    fn record(&mut self, tr: Transition) {
        self.events.extend(tr.events);
        self.tasks.extend(tr.tasks);
    }

    fn apply(&mut self, cmd: Command) -> Result<(), Rejection> {
        let tr = apply(&mut self.op, &self.wf, cmd, self.now)?;
        self.record(tr);
        Ok(())
    }

    fn take(&mut self, pred: impl Fn(&TaskKind) -> bool) -> Option<TaskSpec> {
        let i = self.tasks.iter().position(|t| pred(&t.kind))?;
        Some(self.tasks.remove(i))
    }

    /// Without a concurrency policy an operation starts as it is accepted;
    /// with one, its `Start` task starts it.
    fn start(&mut self) {
        if let Some(_task) = self.take(|k| *k == TaskKind::Start) {
            self.apply(Command::Start).unwrap();
        }
        assert_eq!(self.op.status, OpStatus::Running);
    }

    /// Answers the pending invocation of `step` in `phase`, as the engine would.
    fn answer(&mut self, step: &str, phase: Phase, outcome: Outcome) {
        let task = self
            .take(|k| matches!(k, TaskKind::Invoke { step: s, phase: p, .. } if s == step && *p == phase))
            .unwrap_or_else(|| panic!("no invocation of {step} ({phase:?}) pending"));
        let TaskKind::Invoke { attempt, .. } = task.kind else { unreachable!() };
        self.now = self.now.max(task.due);
        match check_invoke(&self.op, step, attempt, phase) {
            InvokeCheck::Stale => return self.apply(Command::Discard).unwrap(),
            InvokeCheck::Begin => self.apply(Command::AttemptStarted { step: step.into(), attempt, phase }).unwrap(),
            InvokeCheck::Current => {}
        }
        self.apply(Command::Result { step: step.into(), attempt, phase, outcome, sample: 0.5 }).unwrap();
    }

    fn status(&self, step: &str) -> StepState {
        self.op.step(step).unwrap().1.status
    }

    fn kinds(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| serde_json::to_value(&e.kind).unwrap()["type"].as_str().unwrap().to_string())
            .collect()
    }
}

fn done() -> Outcome {
    Outcome::Done(json!({"ok": true}))
}

fn fail(retryable: bool) -> Outcome {
    Outcome::Failed { error: "boom".into(), retryable, maybe_applied: false, retry_after: None }
}

const ORDER: &str = r#"
name = "place-order"
label = "Your order"
[[steps]]
name = "reserve"
call = { service = "inventory", path = "/reserve" }
compensate = { service = "inventory", path = "/release" }
[[steps]]
name = "charge"
call = { service = "payment", path = "/charge" }
retry = { attempts = 3, initial = "100ms", max = "1s" }
compensate = { service = "payment", path = "/refund" }
[[steps]]
parallel = ["email", "analytics"]
[[steps]]
name = "email"
call = { service = "mail", path = "/send" }
[[steps]]
name = "analytics"
call = { service = "analytics", path = "/record" }
"#;

#[test]
fn a_happy_order_runs_stage_by_stage_and_succeeds() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    sim.answer("reserve", Phase::Forward, done());
    assert_eq!(sim.status("charge"), StepState::Running);
    sim.answer("charge", Phase::Forward, done());
    assert_eq!(sim.status("email"), StepState::Running);
    assert_eq!(sim.status("analytics"), StepState::Running);
    sim.answer("analytics", Phase::Forward, done());
    assert_eq!(sim.op.status, OpStatus::Running, "waits for the whole parallel group");
    sim.answer("email", Phase::Forward, done());
    assert_eq!(sim.op.status, OpStatus::Succeeded);
    assert_eq!(sim.kinds().last().unwrap(), "succeeded");
    assert!(sim.op.outcome.as_ref().unwrap().summary.contains("done"));
}

#[test]
fn a_retryable_failure_retries_with_backoff_then_succeeds() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    sim.answer("reserve", Phase::Forward, done());
    sim.answer("charge", Phase::Forward, fail(true));
    let s = sim.op.step("charge").unwrap().1;
    assert_eq!(s.status, StepState::Retrying);
    let next = s.next_attempt_at.unwrap();
    assert!(next > sim.now, "the retry waits");
    sim.answer("charge", Phase::Forward, done());
    assert_eq!(sim.op.step("charge").unwrap().1.attempts, 2);
    assert!(sim.kinds().contains(&"step_retrying".to_string()));
}

#[test]
fn a_declined_payment_releases_the_reservation_and_fails_honestly() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    sim.answer("reserve", Phase::Forward, done());
    sim.answer("charge", Phase::Forward, fail(false));
    assert_eq!(sim.op.status, OpStatus::Compensating);
    assert_eq!(sim.status("email"), StepState::Skipped);
    sim.answer("reserve", Phase::Compensation, done());
    assert_eq!(sim.op.status, OpStatus::Failed);
    assert_eq!(sim.status("reserve"), StepState::Compensated);
    let outcome = sim.op.outcome.clone().unwrap();
    assert_eq!(outcome.failed_step.as_deref(), Some("charge"));
    assert_eq!(outcome.undone.len(), 1);
    assert!(!sim.op.needs_attention);
}

#[test]
fn exhausted_retries_fail_the_step() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    sim.answer("reserve", Phase::Forward, done());
    for _ in 0..3 {
        sim.answer("charge", Phase::Forward, fail(true));
    }
    assert_eq!(sim.status("charge"), StepState::Failed);
    assert_eq!(sim.op.status, OpStatus::Compensating);
}

#[test]
fn a_compensation_that_fails_for_good_needs_attention() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    sim.answer("reserve", Phase::Forward, done());
    sim.answer("charge", Phase::Forward, fail(false));
    sim.answer("reserve", Phase::Compensation, fail(false));
    assert_eq!(sim.op.status, OpStatus::Failed);
    assert!(sim.op.needs_attention);
    assert_eq!(sim.status("reserve"), StepState::CompensationFailed);
    assert!(sim.op.outcome.as_ref().unwrap().not_undone[0].needs_attention);
}

#[test]
fn a_step_answering_202_completes_by_callback() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    sim.answer("reserve", Phase::Forward, Outcome::Accepted);
    assert!(sim.op.step("reserve").unwrap().1.awaiting_callback);
    sim.apply(Command::Callback { step: "reserve".into(), attempt: 1, outcome: done(), sample: 0.0 }).unwrap();
    assert_eq!(sim.status("reserve"), StepState::Succeeded);
    assert_eq!(sim.status("charge"), StepState::Running);
    let again = sim.apply(Command::Callback { step: "reserve".into(), attempt: 1, outcome: done(), sample: 0.0 });
    assert_eq!(again, Err(Rejection::NotAwaiting("reserve".into())), "a second callback is refused");
}

#[test]
fn a_callback_that_comes_before_its_calls_202_settles_the_step_and_the_202_changes_nothing() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    // The call is out (its task taken), and the service reports at once.
    sim.apply(Command::Callback { step: "reserve".into(), attempt: 1, outcome: done(), sample: 0.0 }).unwrap();
    assert_eq!(sim.status("reserve"), StepState::Succeeded);
    let settled = sim.op.clone();
    sim.answer("reserve", Phase::Forward, Outcome::Accepted);
    assert_eq!(sim.op, settled, "the 202 arrives for a step already done");
}

#[test]
fn a_callback_for_an_attempt_that_is_over_changes_nothing() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    sim.answer("reserve", Phase::Forward, done());
    sim.answer("charge", Phase::Forward, Outcome::Accepted);
    let retry = fail(true);
    sim.apply(Command::Callback { step: "charge".into(), attempt: 1, outcome: retry, sample: 0.0 }).unwrap();
    assert_eq!(sim.status("charge"), StepState::Retrying);
    let late = Command::Callback { step: "charge".into(), attempt: 1, outcome: done(), sample: 0.0 };
    assert_eq!(sim.apply(late.clone()), Err(Rejection::AttemptOver("charge".into(), 1)), "its retry is due");

    sim.answer("charge", Phase::Forward, Outcome::Accepted);
    let before = sim.op.clone();
    assert_eq!(sim.apply(late), Err(Rejection::AttemptOver("charge".into(), 1)), "attempt 2 runs");
    assert_eq!(sim.op, before);
    sim.apply(Command::Callback { step: "charge".into(), attempt: 2, outcome: done(), sample: 0.0 }).unwrap();
    assert_eq!(sim.status("charge"), StepState::Succeeded);
}

#[test]
fn cancel_undoes_completed_steps_in_reverse_order() {
    let mut sim = Sim::new(ORDER);
    sim.start();
    sim.answer("reserve", Phase::Forward, done());
    sim.answer("charge", Phase::Forward, done());
    sim.apply(Command::Cancel { reason: "changed my mind".into() }).unwrap();
    assert_eq!(sim.op.status, OpStatus::Compensating, "waits for the calls in flight");
    sim.answer("email", Phase::Forward, done());
    sim.answer("analytics", Phase::Forward, done());
    sim.answer("charge", Phase::Compensation, done());
    sim.answer("reserve", Phase::Compensation, done());
    assert_eq!(sim.op.status, OpStatus::Cancelled);
    assert_eq!(sim.apply(Command::Cancel { reason: "again".into() }), Err(Rejection::Finished));
}

#[test]
fn a_late_step_is_flagged_delayed_and_a_deadline_fails_it() {
    let mut sim = Sim::new(
        r#"
name = "slow"
[[steps]]
name = "a"
call = { service = "s", path = "/a" }
expected_within = "1s"
deadline = "5s"
compensate = { service = "s", path = "/undo" }
"#,
    );
    sim.start();
    sim.take(|k| matches!(k, TaskKind::Timer { timer: Timer::StepExpected { .. } })).unwrap();
    sim.apply(Command::Timer(Timer::StepExpected { step: "a".into() })).unwrap();
    assert!(sim.op.delayed && sim.op.steps[0].delayed);
    assert_eq!(sim.kinds().last().unwrap(), "step_delayed");
    sim.apply(Command::Timer(Timer::StepDeadline { step: "a".into() })).unwrap();
    assert_eq!(sim.status("a"), StepState::Compensating, "a call in flight at the deadline may have worked: undo it");
    // The user is told what happens next, and that news reaches the inbox.
    let passed = sim.events.iter().find(|e| matches!(e.kind, EventKind::DeadlinePassed { .. })).unwrap();
    assert_eq!(passed.kind, EventKind::DeadlinePassed { step: Some("a".into()) });
    assert!(passed.message.starts_with("A was not done in time: it is being stopped"), "{}", passed.message);
    sim.op.subject = Some("u".into());
    let notice = crate::notify::derive(&sim.op, &sim.wf.notify, &sim.events).unwrap();
    assert_eq!(notice.trigger, crate::notify::Trigger::Delayed);
    assert_eq!(notice.body, format!("{}.", passed.message));
    sim.answer("a", Phase::Forward, done()); // the late answer changes nothing
    assert_eq!(sim.status("a"), StepState::Compensating);
    sim.answer("a", Phase::Compensation, done());
    assert_eq!(sim.op.status, OpStatus::Failed);
}

#[test]
fn an_operation_is_told_when_it_is_expected_and_what_a_deadline_does() {
    let toml = |within: &str| {
        format!(
            "name = \"w\"\nexpected_within = \"{within}\"\ndeadline = \"1h\"\n[[steps]]\nname = \"a\"\ncall = {{ service = \"s\", path = \"/a\" }}\n"
        )
    };
    let accepted = |within: &str, observed: Option<u64>| {
        let wf = workflow::from_toml(&toml(within)).unwrap();
        let observed = observed.map(|s| crate::Span(std::time::Duration::from_secs(s)));
        let intake = crate::operation::Intake { observed, lang: None };
        let (op, tr) = accept(&wf, OperationId::new(t0(), [0; 10]), json!({}), Some("u".into()), None, &intake, t0());
        let notice = crate::notify::derive(&op, &wf.notify, &tr.events).unwrap();
        (op, notice.body)
    };

    let (op, body) = accepted("45s", Some(600));
    let e = op.expectation.clone().unwrap();
    assert_eq!((e.within_ms, e.basis), (45_000, crate::expect::Basis::Configured), "a written window wins");
    assert_eq!(op.expected_by, Some(t0() + chrono::Duration::seconds(45)));
    assert_eq!(
        e.if_late.as_deref(),
        Some("If it is not done by its deadline, it is stopped, and whatever can be undone is undone.")
    );
    assert_eq!(body, "We have your request and are working on it. Usually takes under 45 seconds.");

    let (op, body) = accepted("auto", Some(90));
    let e = op.expectation.unwrap();
    assert_eq!((e.within_ms, e.basis), (90_000, crate::expect::Basis::Observed));
    assert_eq!(op.expected_by, Some(t0() + chrono::Duration::seconds(90)));
    assert!(body.ends_with("Usually takes under 2 minutes."), "{body}");

    // Nothing seen yet: nothing promised, no lateness timer.
    let (op, body) = accepted("auto", None);
    assert_eq!((op.expectation, op.expected_by), (None, None));
    assert_eq!(body, "We have your request and are working on it.");
}

// ---- properties ----------------------------------------------------------

fn workflow_toml(stages: &[Vec<(bool, u32, bool)>]) -> String {
    let mut s = String::from("name = \"p\"\n");
    let mut n = 0;
    for stage in stages {
        let names: Vec<String> = stage
            .iter()
            .map(|_| {
                n += 1;
                format!("s{n}")
            })
            .collect();
        if names.len() > 1 {
            s.push_str(&format!("[[steps]]\nparallel = {names:?}\n"));
        }
        for (name, (undo, attempts, hold)) in names.iter().zip(stage) {
            s.push_str(&format!("[[steps]]\nname = \"{name}\"\ncall = {{ service = \"x\", path = \"/{name}\" }}\nretry = {{ attempts = {attempts} }}\n"));
            if *hold {
                s.push_str("on_failure = \"hold\"\n");
            }
            if *undo {
                s.push_str(&format!("compensate = {{ service = \"x\", path = \"/undo-{name}\" }}\n"));
            }
        }
    }
    s
}

#[derive(Debug, Clone)]
enum Act {
    /// Answer the n-th pending invocation with outcome kind k.
    Answer(usize, u8),
    Callback(usize, u8),
    Timer(usize),
    Cancel,
    /// A person redrives the n-th held step or failed compensation.
    Redrive(usize),
    /// The n-th pending invocation cannot be sent: it waits for its service.
    Wait(usize),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => (any::<usize>(), 0u8..4).prop_map(|(i, k)| Act::Answer(i, k)),
        2 => (any::<usize>(), 0u8..3).prop_map(|(i, k)| Act::Callback(i, k)),
        1 => any::<usize>().prop_map(Act::Timer),
        1 => Just(Act::Cancel),
        1 => any::<usize>().prop_map(Act::Redrive),
        2 => any::<usize>().prop_map(Act::Wait),
    ]
}

fn outcome_of(k: u8) -> Outcome {
    match k {
        0 => done(),
        1 => Outcome::Accepted,
        2 => Outcome::Failed { error: "flaky".into(), retryable: true, maybe_applied: true, retry_after: None },
        _ => fail(false),
    }
}

/// Redrives the n-th step that waits for a person, if any; answers whether one did.
fn redrive(sim: &mut Sim, i: usize) -> bool {
    let waiting: Vec<(String, Phase)> = sim
        .op
        .steps
        .iter()
        .filter_map(|s| match s.status {
            StepState::Held => Some((s.name.clone(), Phase::Forward)),
            StepState::CompensationFailed if sim.op.is_final() => Some((s.name.clone(), Phase::Compensation)),
            _ => None,
        })
        .collect();
    if waiting.is_empty() {
        return false;
    }
    let (step, phase) = waiting[i % waiting.len()].clone();
    sim.apply(Command::Redrive { step, phase }).unwrap();
    true
}

fn step_answer(sim: &mut Sim, i: usize, k: u8) {
    let invokes: Vec<usize> = sim
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t.kind, TaskKind::Invoke { .. }))
        .map(|(i, _)| i)
        .collect();
    if invokes.is_empty() {
        return;
    }
    let task = sim.tasks.remove(invokes[i % invokes.len()]);
    let TaskKind::Invoke { step, phase, .. } = task.kind.clone() else { unreachable!() };
    sim.tasks.push(task);
    sim.answer(&step, phase, outcome_of(k));
}

/// What every run, however driven, must end in: a final operation whose
/// timeline is gapless and ends with its final event, no step left in
/// flight, what was done undone unless it succeeded, and an outcome (and
/// `needs_attention`) that say so.
fn ended_valid(sim: &Sim) -> Result<(), TestCaseError> {
    let op = &sim.op;
    prop_assert!(op.is_final(), "not final: {:?}", op.status);
    for (i, e) in sim.events.iter().enumerate() {
        prop_assert_eq!(e.seq, i as u64 + 1);
    }
    prop_assert!(sim.events.last().unwrap().kind.is_final());
    for s in &op.steps {
        let in_flight = matches!(
            s.status,
            StepState::Pending
                | StepState::Running
                | StepState::Retrying
                | StepState::Waiting
                | StepState::Held
                | StepState::Compensating
        );
        prop_assert!(!in_flight, "{} left {:?}", s.name, s.status);
        if op.status != OpStatus::Succeeded && s.undo.is_some() {
            prop_assert!(s.status != StepState::Succeeded, "{} succeeded but was not undone", s.name);
        }
    }
    if op.status == OpStatus::Succeeded {
        prop_assert!(op.steps.iter().all(|s| matches!(s.status, StepState::Succeeded | StepState::Skipped)));
    }
    prop_assert_eq!(op.needs_attention, op.steps.iter().any(|s| s.status == StepState::CompensationFailed));
    prop_assert!(op.outcome.as_ref().is_some_and(|o| o.status == op.status), "the outcome is the final one");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_run_ends_in_a_valid_final_state(
        stages in prop::collection::vec(prop::collection::vec((any::<bool>(), 1u32..4, prop::bool::weighted(0.3)), 1..4), 1..4),
        acts in prop::collection::vec(act(), 0..60),
    ) {
        let mut sim = Sim::new(&workflow_toml(&stages));
        sim.start();
        for a in acts {
            match a {
                Act::Answer(i, k) => step_answer(&mut sim, i, k),
                Act::Callback(i, k) => {
                    let awaiting: Vec<(String, u32)> = sim.op.steps.iter().filter(|s| s.awaiting_callback).map(|s| (s.name.clone(), s.attempts)).collect();
                    if !awaiting.is_empty() {
                        let (step, attempt) = awaiting[i % awaiting.len()].clone();
                        let outcome = if k == 1 { fail(false) } else { done() };
                        sim.apply(Command::Callback { step, attempt, outcome, sample: 0.3 }).unwrap();
                    }
                }
                Act::Timer(i) => {
                    let step = sim.op.steps[i % sim.op.steps.len()].name.clone();
                    sim.apply(Command::Timer(Timer::StepExpected { step })).unwrap();
                }
                Act::Cancel => { let _ = sim.apply(Command::Cancel { reason: "test".into() }); }
                Act::Redrive(i) => { redrive(&mut sim, i); }
                Act::Wait(i) => waits::unsent(&mut sim, i),
            }
        }
        // Drain: answer everything with success and complete every callback.
        for _ in 0..500 {
            if sim.op.is_final() { break; }
            if let Some(s) = sim.op.steps.iter().find(|s| s.awaiting_callback) {
                let (step, attempt) = (s.name.clone(), s.attempts);
                sim.apply(Command::Callback { step, attempt, outcome: done(), sample: 0.0 }).unwrap();
            } else if !redrive(&mut sim, 0) {
                step_answer(&mut sim, 0, 0);
            }
        }
        ended_valid(&sim)?;
        // Only a redriven compensation reopens an ended operation.
        let reopened = sim.events.iter().filter(|e| matches!(e.kind, EventKind::StepRedriven { phase: Phase::Compensation, .. })).count();
        prop_assert_eq!(sim.events.iter().filter(|e| e.kind.is_final()).count(), 1 + reopened);
        // Compensation runs in reverse order of completion.
        let completed: Vec<String> = sim.events.iter().filter_map(|e| match &e.kind { EventKind::StepSucceeded { step, .. } => Some(step.clone()), _ => None }).collect();
        let undone: Vec<String> = sim.events.iter().filter_map(|e| match &e.kind {
            EventKind::CompensationStarted { step, attempt: 1 } if completed.contains(step) => Some(step.clone()), _ => None }).collect();
        // A compensation that waited for its service starts its first attempt again.
        let mut undone = undone;
        undone.dedup();
        let mut expected: Vec<String> = completed.iter().rev().filter(|s| undone.contains(s)).cloned().collect();
        expected.dedup();
        prop_assert_eq!(undone, expected);
    }
}

mod awaits;
mod held;
mod rough;
mod waits;
