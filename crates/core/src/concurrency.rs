//! The concurrency policy (`on_conflict`), decided without IO: what a new
//! operation does given the operations still active with its key, and which
//! queued one starts when the line moves. The store reads the active ones
//! and carries the decision out in the transaction that asked.

use crate::{OperationId, workflow::OnConflict};

/// An operation not yet final with a given concurrency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub id: OperationId,
    /// Accepted and waiting behind another ([`crate::Operation::is_queued`]).
    pub queued: bool,
}

/// What happens to a new operation under its workflow's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission<'a> {
    /// Nothing active has its key: it goes as accepted.
    Go,
    /// `reject`: refused, naming the operation that holds the key.
    Conflict(&'a OperationId),
    /// `queue`: it waits behind the last one in line.
    Queue(&'a OperationId),
    /// `supersede`: every active one is superseded, and the new one waits
    /// behind the one holding the key until that one has wound down.
    Supersede(&'a OperationId),
    /// `ask`: the new one waits for its user to choose between it and the
    /// one holding the key ([`Choice`]).
    Ask(&'a OperationId),
}

/// What the user of an `ask` operation chose, or its workflow's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// The running one goes on; the new one is cancelled without running.
    Keep,
    /// The running one is undone as with `supersede`; the new one runs.
    Replace,
}

/// `active` is oldest first (ids sort by time).
pub fn admit(policy: OnConflict, active: &[Active]) -> Admission<'_> {
    // The holder is the one running; if all wait (its head just ended in
    // this same commit), the first in line.
    let Some(head) = active.iter().find(|a| !a.queued).or(active.first()) else { return Admission::Go };
    match policy {
        OnConflict::Reject => Admission::Conflict(&head.id),
        OnConflict::Queue => Admission::Queue(active.last().map_or(&head.id, |a| &a.id)),
        OnConflict::Supersede => Admission::Supersede(&head.id),
        OnConflict::Ask => Admission::Ask(&head.id),
    }
}

/// After an operation with this key ended: the one to start now, the
/// oldest in line, unless another is still running.
pub fn next_to_start(active: &[Active]) -> Option<&OperationId> {
    if active.iter().any(|a| !a.queued) {
        return None;
    }
    active.first().map(|a| &a.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> [OperationId; 3] {
        let t = chrono::DateTime::from_timestamp_millis(1_760_000_000_000).unwrap();
        [1, 2, 3].map(|n| OperationId::new(t + chrono::Duration::milliseconds(n), [0; 10]))
    }

    fn line(ids: &[OperationId], queued: &[bool]) -> Vec<Active> {
        ids.iter().zip(queued).map(|(id, &queued)| Active { id: id.clone(), queued }).collect()
    }

    #[test]
    fn with_nothing_active_every_policy_lets_it_go() {
        for policy in [OnConflict::Reject, OnConflict::Queue, OnConflict::Supersede, OnConflict::Ask] {
            assert_eq!(admit(policy, &[]), Admission::Go);
        }
    }

    #[test]
    fn reject_and_supersede_name_the_running_one_and_queue_goes_behind_the_last() {
        let [a, b, c] = ids();
        let active = line(&[a.clone(), b.clone(), c.clone()], &[true, false, true]);

        assert_eq!(admit(OnConflict::Reject, &active), Admission::Conflict(&b));
        assert_eq!(admit(OnConflict::Supersede, &active), Admission::Supersede(&b));
        assert_eq!(admit(OnConflict::Ask, &active), Admission::Ask(&b));
        assert_eq!(admit(OnConflict::Queue, &active), Admission::Queue(&c));
    }

    #[test]
    fn when_all_wait_the_first_in_line_holds_the_key() {
        let [a, b, _] = ids();
        let active = line(&[a.clone(), b], &[true, true]);
        assert_eq!(admit(OnConflict::Reject, &active), Admission::Conflict(&a));
    }

    #[test]
    fn the_oldest_in_line_starts_only_once_none_runs() {
        let [a, b, _] = ids();
        assert_eq!(next_to_start(&line(&[a.clone(), b.clone()], &[true, true])), Some(&a));
        assert_eq!(next_to_start(&line(&[a, b], &[true, false])), None);
        assert_eq!(next_to_start(&[]), None);
    }
}
