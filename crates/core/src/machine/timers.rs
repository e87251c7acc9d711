//! Timers: "taking longer than usual" at `expected_within`, failure at `deadline`.

use super::{Tx, compensate, forward::fail_step};
use crate::{
    OpStatus,
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
                let reason = format!("it did not finish within its deadline of {within}");
                compensate::begin(tx, Ending::Failed { step: None, reason });
            }
        }
        Timer::StepExpected { step } => {
            let Some((ix, s)) = tx.op.step(&step) else { return };
            if matches!(s.status, StepState::Running | StepState::Retrying) && !s.delayed && active {
                tx.op.steps[ix].delayed = true;
                tx.op.delayed = true;
                tx.emit(EventKind::StepDelayed { step });
            }
        }
        Timer::InputExpires => {
            let all: Vec<String> = tx.op.input.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            super::outcome::erase(tx, &all);
        }
        Timer::StepDeadline { step } => {
            let Some((ix, s)) = tx.op.step(&step) else { return };
            if matches!(s.status, StepState::Running | StepState::Retrying) && tx.op.status == OpStatus::Running {
                let within = tx.wf.steps[ix].deadline.map(|d| d.to_string()).unwrap_or_default();
                let reason = format!("it did not finish within its deadline of {within}");
                // A call may be in flight and may yet do its work: undo it too.
                if s.status == StepState::Running {
                    tx.op.steps[ix].maybe_applied = true;
                }
                fail_step(tx, ix, reason.clone());
                compensate::begin(tx, Ending::Failed { step: Some(step), reason });
            }
        }
    }
}
