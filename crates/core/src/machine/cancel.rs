//! Cancellation, asked by a user or forced by a newer request (`supersede`).

use super::{Rejection, Tx, compensate};
use crate::{OpStatus, OperationId, operation::Ending, timeline::EventKind};

pub(super) fn cancel(tx: &mut Tx, reason: String) -> Result<(), Rejection> {
    if tx.op.status.is_final() {
        return Err(Rejection::Finished);
    }
    if tx.op.status == OpStatus::Compensating {
        return Err(Rejection::AlreadyEnding);
    }
    tx.emit(EventKind::CancelRequested { reason: reason.clone() });
    compensate::begin(tx, Ending::Cancelled { reason });
    Ok(())
}

pub(super) fn supersede(tx: &mut Tx, by: OperationId) {
    if tx.op.status.is_final() || tx.op.status == OpStatus::Compensating {
        return;
    }
    tx.emit(EventKind::Superseded { by: Some(by) });
    let reason = crate::lang::say(&tx.op.lang, "reason_superseded", &[]);
    compensate::begin(tx, Ending::Cancelled { reason });
}
