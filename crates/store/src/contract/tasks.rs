//! Transitions and the tasks they consume; claiming, leases and timers.

use chrono::Utc;
use herald_core::{Command, OperationId, StepState, TaskKind, machine::Outcome, machine::Rejection};

use super::{Harness, answer, apply, claim_when_due, create, get, new_op, workflow};
use crate::{Task, TransitionResult};

fn call_of(tasks: &[Task]) -> &Task {
    tasks.iter().find(|t| matches!(t.kind, TaskKind::Invoke { .. })).expect("a step call")
}

pub async fn a_transition_whose_task_this_node_no_longer_holds_changes_nothing(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "", "");
    let op = create(&*store, new_op(&wf, None, None)).await;
    let call = call_of(&op.tasks).clone();
    assert!(call.owned, "work due now is leased to this node at once");
    store.release().await.unwrap();

    let lost = apply(&*store, &wf, &op.op.id, Some(call.id), answer(1, Outcome::Done(serde_json::json!({})))).await;
    let unknown = OperationId::new(Utc::now(), [1; 10]);
    let nowhere = apply(&*store, &wf, &unknown, None, Command::Discard).await;

    assert!(matches!(lost, TransitionResult::Missing), "{lost:?}");
    let stored = get(&*store, &op.op.id).await;
    assert_eq!(stored.steps[0].status, StepState::Running, "the answer was not applied");
    assert_eq!(stored.last_seq, op.op.last_seq);
    assert!(matches!(nowhere, TransitionResult::Missing), "no such operation");
    let claimed = store.claim_due(10).await.unwrap();
    assert_eq!(claimed.iter().map(|t| t.id).collect::<Vec<_>>(), [call.id], "the task is still there to claim");
    let done = apply(&*store, &wf, &op.op.id, Some(call.id), answer(1, Outcome::Done(serde_json::json!({})))).await;
    assert!(matches!(done, TransitionResult::Applied(ref a) if a.op.is_final()), "{done:?}");
    let again = apply(&*store, &wf, &op.op.id, Some(call.id), Command::Discard).await;
    assert!(matches!(again, TransitionResult::Missing), "a task is consumed once");
}

pub async fn a_refused_transition_keeps_its_task_and_writes_nothing(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "", "");
    let op = create(&*store, new_op(&wf, None, None)).await;
    let call = call_of(&op.tasks).id;

    let callback = Command::Callback { step: "a".into(), attempt: 1, outcome: Outcome::Accepted, sample: 0.5 };
    let refused = apply(&*store, &wf, &op.op.id, Some(call), callback).await;

    assert!(matches!(refused, TransitionResult::Rejected(Rejection::NotAwaiting(ref s)) if s == "a"), "{refused:?}");
    assert_eq!(get(&*store, &op.op.id).await.last_seq, op.op.last_seq);
    assert!(store.finish_task(call).await.unwrap(), "the task was not consumed: still held here");
    assert!(!store.finish_task(call).await.unwrap(), "finished once");
}

pub async fn claim_due_leases_free_due_tasks_once_and_release_gives_them_back(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "expected_within = \"1h\"", "");
    let op = create(&*store, new_op(&wf, None, None)).await;
    let call = call_of(&op.tasks).id;
    let timer = op.tasks.iter().find(|t| matches!(t.kind, TaskKind::Timer { .. })).expect("a timer");
    assert!(!timer.owned, "work due later is nobody's until it is due");

    let held = store.claim_due(10).await.unwrap();
    store.release().await.unwrap();
    let claimed = store.claim_due(10).await.unwrap();
    let again = store.claim_due(10).await.unwrap();

    assert!(held.is_empty(), "a task this node holds is not claimed again: {held:?}");
    assert_eq!(claimed.len(), 1, "the timer is not due: {claimed:?}");
    assert_eq!((claimed[0].id, &claimed[0].op, claimed[0].owned), (call, &op.op.id, true));
    assert_eq!(claimed[0].kind, call_of(&op.tasks).kind);
    assert!(again.is_empty(), "claimed once: {again:?}");
    assert!(store.finish_task(call).await.unwrap(), "claimed tasks are held by this node");
}

pub async fn a_task_due_later_is_claimed_only_once_it_is_due(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "expected_within = \"1h\"", "");
    let op = create(&*store, new_op(&wf, None, None)).await;
    let call = call_of(&op.tasks).clone();
    let expected = op.op.expected_by.expect("an expected time");
    let millis = |t: Option<herald_core::Time>| t.map(|t| t.timestamp_millis());
    assert_eq!(millis(store.next_due().await.unwrap()), millis(Some(expected)), "the timer; the call is held");

    let due = Utc::now() + chrono::Duration::milliseconds(300);
    assert!(store.retry_task(call.id, call.kind.clone(), due).await.unwrap());
    assert!(!store.retry_task(call.id, call.kind.clone(), due).await.unwrap(), "given back: no longer held");
    assert_eq!(millis(store.next_due().await.unwrap()), millis(Some(due)));
    assert!(store.claim_due(10).await.unwrap().is_empty(), "not before it is due");

    let claimed = claim_when_due(&*store).await;
    assert!(Utc::now() >= due);
    assert_eq!(claimed.iter().map(|t| t.id).collect::<Vec<_>>(), [call.id], "claimed once due");
    assert_eq!(millis(store.next_due().await.unwrap()), millis(Some(expected)));
}
