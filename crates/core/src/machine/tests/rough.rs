//! The state machine driven roughly, as a real run drives it: tasks
//! delivered twice and late, answers and callbacks of attempts that are
//! over, timers (step and operation deadlines, await timeouts) fired when
//! due and again after, events arriving early, twice or for nobody, and
//! workflows of calls, publishes and awaits generated at random. Whatever
//! comes, the run ends in a valid final state, and no step is recorded as
//! succeeded twice in one round (a round: its attempts until a person
//! redrives it).

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// A generated step: what it does, and what surrounds it.
#[derive(Debug, Clone)]
enum Kind {
    /// A call: its compensation, attempts, held for a person on failure,
    /// and a deadline.
    Call { undo: bool, attempts: u32, hold: bool, deadline: bool },
    /// A publish, undone by another publish when `undo`.
    Publish { undo: bool },
    /// An await with a timeout, skipped on timeout when `skip`.
    Await { skip: bool },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => (any::<bool>(), 1u32..4, prop::bool::weighted(0.2), prop::bool::weighted(0.3))
            .prop_map(|(undo, attempts, hold, deadline)| Kind::Call { undo, attempts, hold, deadline }),
        1 => any::<bool>().prop_map(|undo| Kind::Publish { undo }),
        1 => any::<bool>().prop_map(|skip| Kind::Await { skip }),
    ]
}

fn workflow(stages: &[Vec<Kind>], op_deadline: bool) -> String {
    let mut s = String::from("name = \"rough\"\n");
    if op_deadline {
        s.push_str("deadline = \"1h\"\n");
    }
    let mut n = 0;
    for stage in stages {
        let names: Vec<String> = stage.iter().map(|_| (n += 1, format!("s{n}")).1).collect();
        if names.len() > 1 {
            s.push_str(&format!("[[steps]]\nparallel = {names:?}\n"));
        }
        for (name, kind) in names.iter().zip(stage) {
            s.push_str(&format!("[[steps]]\nname = \"{name}\"\n"));
            match kind {
                Kind::Call { undo, attempts, hold, deadline } => {
                    s.push_str(&format!(
                        "call = {{ service = \"x\", path = \"/{name}\" }}\nretry = {{ attempts = {attempts} }}\n"
                    ));
                    if *hold {
                        s.push_str("on_failure = \"hold\"\n");
                    }
                    if *deadline {
                        s.push_str("deadline = \"10m\"\n");
                    }
                    if *undo {
                        s.push_str(&format!("compensate = {{ service = \"x\", path = \"/undo-{name}\" }}\n"));
                    }
                }
                Kind::Publish { undo } => {
                    s.push_str("publish = { topic = \"t\", type = \"Done\" }\n");
                    if *undo {
                        s.push_str("compensate = { topic = \"t\", type = \"Undone\" }\n");
                    }
                }
                Kind::Await { skip } => {
                    let on = if *skip { "skip" } else { "fail" };
                    s.push_str(&format!(
                        "await = {{ topic = \"w\", type = \"Arrived{name}\", timeout = \"30m\", on_timeout = \"{on}\" }}\n"
                    ));
                }
            }
        }
    }
    s
}

#[derive(Debug, Clone)]
enum Act {
    /// Answer the n-th pending invocation with outcome kind k.
    Answer(usize, u8),
    /// Deliver the n-th pending task twice.
    Duplicate(usize),
    /// The n-th step's answer for an attempt that is over (or not yet).
    LateResult(usize, u8),
    /// A callback for the n-th awaiting step, or a late one for any step.
    Callback(usize, u8, bool),
    /// Fire the n-th due timer; `keep`: it is delivered again later.
    Timer(usize, bool),
    /// The n-th await step's event arrives (maybe before it begins).
    Event(usize),
    Cancel,
    Supersede,
    Redrive(usize),
    Wait(usize),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => (any::<usize>(), 0u8..4).prop_map(|(i, k)| Act::Answer(i, k)),
        2 => any::<usize>().prop_map(Act::Duplicate),
        1 => (any::<usize>(), 0u8..4).prop_map(|(i, k)| Act::LateResult(i, k)),
        2 => (any::<usize>(), 0u8..3, any::<bool>()).prop_map(|(i, k, late)| Act::Callback(i, k, late)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, keep)| Act::Timer(i, keep)),
        2 => any::<usize>().prop_map(Act::Event),
        1 => Just(Act::Cancel),
        1 => Just(Act::Supersede),
        1 => any::<usize>().prop_map(Act::Redrive),
        1 => any::<usize>().prop_map(Act::Wait),
    ]
}

/// Fires the n-th timer task, as the engine does when it comes due.
fn fire(sim: &mut Sim, i: usize, keep: bool) {
    let timers: Vec<usize> = sim
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t.kind, TaskKind::Timer { .. }))
        .map(|(i, _)| i)
        .collect();
    let Some(&at) = timers.get(i % timers.len().max(1)) else { return };
    let task = if keep { sim.tasks[at].clone() } else { sim.tasks.remove(at) };
    let TaskKind::Timer { timer } = task.kind else { unreachable!() };
    sim.now = sim.now.max(task.due);
    sim.apply(Command::Timer(timer)).unwrap();
}

fn arrive(sim: &mut Sim, i: usize) {
    let awaits: Vec<String> = sim.wf.awaits().map(|(ix, _)| sim.wf.steps[ix].name.clone()).collect();
    let Some(step) = awaits.get(i % awaits.len().max(1)) else { return };
    let event = json!({"specversion": "1.0", "id": "e", "source": "/w", "type": format!("Arrived{step}"),
        "operationid": sim.op.id.to_string()});
    sim.apply(Command::EventArrived { topic: "w".into(), event }).unwrap();
}

/// How many times each step succeeded in one round: none may twice.
fn succeeded_twice_in_a_round(events: &[Event]) -> Option<String> {
    let mut this_round = std::collections::HashMap::<&str, u32>::new();
    for e in events {
        match &e.kind {
            EventKind::StepSucceeded { step, .. } => {
                let n = this_round.entry(step.as_str()).or_default();
                *n += 1;
                if *n > 1 {
                    return Some(step.clone());
                }
            }
            EventKind::StepRedriven { step, phase: Phase::Forward } => {
                this_round.remove(step.as_str());
            }
            _ => {}
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_rough_run_ends_in_a_valid_final_state_with_each_step_succeeding_once_a_round(
        stages in prop::collection::vec(prop::collection::vec(kind(), 1..3), 1..4),
        op_deadline in prop::bool::weighted(0.3),
        acts in prop::collection::vec(act(), 0..80),
    ) {
        let mut sim = Sim::new(&workflow(&stages, op_deadline));
        sim.start();
        for a in acts {
            match a {
                Act::Answer(i, k) => step_answer(&mut sim, i, k),
                Act::Duplicate(i) => {
                    if !sim.tasks.is_empty() {
                        let task = sim.tasks[i % sim.tasks.len()].clone();
                        sim.tasks.push(task);
                    }
                }
                Act::LateResult(i, k) => {
                    let s = &sim.op.steps[i % sim.op.steps.len()];
                    let (step, attempt) = (s.name.clone(), s.attempts.saturating_sub((k % 2) as u32));
                    let _ = sim.apply(Command::Result { step, attempt, phase: Phase::Forward, outcome: outcome_of(k), sample: 0.5 });
                }
                Act::Callback(i, k, late) => {
                    let steps: Vec<(String, u32)> = sim.op.steps.iter()
                        .filter(|s| late || s.awaiting_callback)
                        .map(|s| (s.name.clone(), if late { s.attempts.saturating_sub(1) } else { s.attempts }))
                        .collect();
                    if let Some((step, attempt)) = steps.get(i % steps.len().max(1)).cloned() {
                        let outcome = if k == 1 { fail(false) } else { done() };
                        let _ = sim.apply(Command::Callback { step, attempt, outcome, sample: 0.3 });
                    }
                }
                Act::Timer(i, keep) => fire(&mut sim, i, keep),
                Act::Event(i) => arrive(&mut sim, i),
                Act::Cancel => { let _ = sim.apply(Command::Cancel { reason: "test".into() }); }
                Act::Supersede => { let _ = sim.apply(Command::Supersede { by: OperationId::new(sim.now, [1; 10]) }); }
                Act::Redrive(i) => { redrive(&mut sim, i); }
                Act::Wait(i) => waits::unsent(&mut sim, i),
            }
        }
        // Drain: every call answered, every callback completed, every
        // event delivered, every timer fired when nothing else is left.
        for _ in 0..1000 {
            if sim.op.is_final() { break; }
            // A call's callback (an await's is its event, below).
            let called_back = sim.op.steps.iter().zip(&sim.wf.steps)
                .find(|(s, d)| s.awaiting_callback && !matches!(d.action, workflow::Action::Await(_)));
            if let Some((s, _)) = called_back {
                let (step, attempt) = (s.name.clone(), s.attempts);
                sim.apply(Command::Callback { step, attempt, outcome: done(), sample: 0.0 }).unwrap();
            } else if redrive(&mut sim, 0) {
            } else if sim.tasks.iter().any(|t| matches!(t.kind, TaskKind::Invoke { .. })) {
                step_answer(&mut sim, 0, 0);
            } else if sim.op.steps.iter().any(|s| s.awaiting_callback) {
                let n = sim.wf.awaits().count();
                for i in 0..n { arrive(&mut sim, i); }
            } else {
                fire(&mut sim, 0, false);
            }
        }
        ended_valid(&sim)?;
        prop_assert_eq!(succeeded_twice_in_a_round(&sim.events), None);
    }
}
