//! Timers: "taking longer than usual" at `expected_within`, failure at `deadline`.

use super::{
    Tx, compensate,
    forward::{advance, fail_step, give_up},
};
use crate::{
    OpStatus,
    lang::say,
    operation::{Ending, StepState},
    task::Timer,
    timeline::EventKind,
};

pub(super) fn fire(tx: &mut Tx, timer: Timer) {
    let active = matches!(tx.op.status, OpStatus::Accepted | OpStatus::Running);
    match timer {
        Timer::OpExpected => {
            if active && !tx.op.delayed {
                tx.op.delayed = true;
                tx.emit(EventKind::Delayed);
            }
        }
        Timer::OpDeadline => {
            if active {
                let within = tx.wf.deadline.map(|d| d.to_string()).unwrap_or_default();
                let reason = say(&tx.op.lang, "reason_deadline", &[("within", &within)]);
                tx.emit(EventKind::DeadlinePassed { step: None });
                compensate::begin(tx, Ending::Failed { step: None, reason });
            }
        }
        Timer::StepExpected { step } => {
            let Some((ix, s)) = tx.op.step(&step) else { return };
            let live =
                matches!(s.status, StepState::Running | StepState::Retrying | StepState::Waiting | StepState::Held);
            if live && !s.delayed && active {
                tx.op.steps[ix].delayed = true;
                tx.op.delayed = true;
                tx.emit(EventKind::StepDelayed { step });
            }
        }
        Timer::DecisionDue => {
            if let (Some(d), OpStatus::AwaitingDecision) = (&tx.op.decision, tx.op.status) {
                let default = d.default;
                let _ = super::decide::decide(tx, default, true);
            }
        }
        Timer::InputExpires => {
            let all: Vec<String> = tx.op.input.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            super::outcome::erase(tx, &all);
        }
        Timer::StepDeadline { step } => {
            let Some((ix, s)) = tx.op.step(&step) else { return };
            let status = s.status;
            let live =
                matches!(status, StepState::Running | StepState::Retrying | StepState::Waiting | StepState::Held);
            if live && tx.op.status == OpStatus::Running {
                let within = tx.wf.steps[ix].deadline.map(|d| d.to_string()).unwrap_or_default();
                let reason = say(&tx.op.lang, "reason_deadline", &[("within", &within)]);
                // A call may be in flight and may yet do its work: undo it too.
                if status == StepState::Running {
                    tx.op.steps[ix].maybe_applied = true;
                }
                if status == StepState::Held {
                    tx.out.resolved.push((step.clone(), crate::task::Phase::Forward));
                }
                tx.emit(EventKind::DeadlinePassed { step: Some(step.clone()) });
                fail_step(tx, ix, reason.clone());
                compensate::begin(tx, Ending::Failed { step: Some(step), reason });
            }
        }
        Timer::AwaitTimeout { step } => {
            let Some((ix, s)) = tx.op.step(&step) else { return };
            let crate::workflow::Action::Await(a) = &tx.wf.steps[ix].action else { return };
            if s.status != StepState::Running || !s.awaiting_callback || tx.op.status != OpStatus::Running {
                return;
            }
            let within = a.timeout.map(|d| d.to_string()).unwrap_or_default();
            tx.op.steps[ix].awaiting_callback = false;
            match a.on_timeout {
                crate::workflow::OnTimeout::Fail => {
                    let reason = say(&tx.op.lang, "reason_nothing_arrived", &[("within", &within)]);
                    give_up(tx, ix, reason)
                }
                crate::workflow::OnTimeout::Skip => {
                    let s = &mut tx.op.steps[ix];
                    s.status = StepState::Skipped;
                    s.finished_at = Some(tx.now);
                    tx.emit(EventKind::StepSkipped { step });
                    advance(tx);
                }
            }
        }
    }
}
