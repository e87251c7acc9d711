//! Transitions and the tasks they consume; claiming, leases and timers.

use chrono::Utc;
use herald_core::{Command, OperationId, StepState, TaskKind, machine::Outcome, machine::Rejection};

use super::{Harness, answer, apply, claim_when_due, create, get, new_op, workflow};
use crate::{Task, TransitionResult};

fn call_of(tasks: &[Task]) -> &Task {
    tasks.iter().find(|t| matches!(t.kind, TaskKind::Invoke { .. })).expect("a step call")
}

/// The rows of these tasks, whichever claim each token came from.
fn rows(tasks: &[Task]) -> Vec<i64> {
    tasks.iter().map(|t| t.id.row).collect()
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
    assert_eq!(rows(&claimed), [call.id.row], "the task is still there to claim");
    let held = claimed[0].id;
    let done = apply(&*store, &wf, &op.op.id, Some(held), answer(1, Outcome::Done(serde_json::json!({})))).await;
    assert!(matches!(done, TransitionResult::Applied(ref a) if a.op.is_final()), "{done:?}");
    let again = apply(&*store, &wf, &op.op.id, Some(held), Command::Discard).await;
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

/// Many transitions asked for at once (a backend may commit them
/// together): each applies or is refused as it would alone, and a refused
/// one leaves its operation and its task as they were, whatever its
/// neighbours did. Some operations get two at once: one applies, and the
/// other sees what it wrote.
pub async fn transitions_at_once_each_apply_or_are_refused_as_alone(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "", "");
    let mut made = Vec::new();
    for _ in 0..60 {
        made.push(create(&*store, new_op(&wf, None, None)).await);
    }
    let done = || answer(1, Outcome::Done(serde_json::json!({})));
    let refused = || Command::Callback { step: "a".into(), attempt: 1, outcome: Outcome::Accepted, sample: 0.5 };
    let mut asked = tokio::task::JoinSet::new();
    for (i, op) in made.iter().enumerate() {
        let (s, w, id, call) = (store.clone(), wf.clone(), op.op.id.clone(), call_of(&op.tasks).id);
        let cmd = if i % 3 == 1 { refused() } else { done() };
        asked.spawn(async move { (i, apply(&*s, &w, &id, Some(call), cmd).await) });
        if i % 3 == 2 {
            // A second answer to the same call, with no task: refused once
            // the first applied, as the step is no longer running.
            let (store, wf, id) = (store.clone(), wf.clone(), op.op.id.clone());
            asked.spawn(async move { (i + 1000, apply(&*store, &wf, &id, None, done()).await) });
        }
    }
    let answers = asked.join_all().await;

    // For each operation: which of its transitions wrote (its first,
    // which consumes its task, or the second, which consumes none); the
    // first consumes its task either way.
    let mut applied: Vec<Vec<bool>> = vec![vec![]; 60];
    for (n, answer) in &answers {
        let (i, consuming) = (n % 1000, *n < 1000);
        match (i % 3, answer) {
            (1, TransitionResult::Rejected(Rejection::NotAwaiting(_))) => {}
            // The later of two answers finds the step over: nothing to
            // write.
            (2, TransitionResult::Applied(a)) if a.events.is_empty() => {}
            (0 | 2, TransitionResult::Applied(a)) => {
                assert!(a.op.is_final(), "{a:?}");
                applied[i].push(consuming);
            }
            (2, TransitionResult::Rejected(_)) => {}
            other => panic!("operation {i}: {other:?}"),
        }
    }
    for (i, op) in made.iter().enumerate() {
        let call = call_of(&op.tasks).id;
        let stored = get(&*store, &op.op.id).await;
        if i % 3 == 1 {
            assert_eq!(stored.last_seq, op.op.last_seq, "operation {i}: the refused transition wrote nothing");
            assert!(store.finish_task(call).await.unwrap(), "operation {i}: its task is still held");
            continue;
        }
        assert!(stored.is_final(), "operation {i}: {:?}", stored.status);
        assert_eq!(applied[i].len(), 1, "operation {i}: one of its answers applied: {:?}", applied[i]);
        assert!(!store.finish_task(call).await.unwrap(), "operation {i}: its task was consumed");
        let events = store.events(&op.op.id, 0, 1000).await.unwrap();
        assert_eq!(events.last().map(|e| e.seq), Some(stored.last_seq), "operation {i}: one timeline");
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=stored.last_seq).collect::<Vec<_>>(), "operation {i}: no gap and no repeat");
    }
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
    assert_eq!((claimed[0].id.row, &claimed[0].op, claimed[0].owned), (call.row, &op.op.id, true));
    assert_eq!(claimed[0].kind, call_of(&op.tasks).kind);
    assert!(again.is_empty(), "claimed once: {again:?}");
    assert!(store.finish_task(claimed[0].id).await.unwrap(), "claimed tasks are held by this node");
}

pub async fn a_task_due_later_is_claimed_only_once_it_is_due(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "expected_within = \"1h\"", "");
    let op = create(&*store, new_op(&wf, None, None)).await;
    let call = call_of(&op.tasks).clone();
    let expected = op.op.expected_by.expect("an expected time");
    let millis = |t: Option<herald_core::Time>| t.map(|t| t.timestamp_millis());
    assert_eq!(millis(store.next_due().await.unwrap()), millis(Some(expected)), "the timer; the call is held");

    let due = Utc::now() + chrono::Duration::milliseconds(1000);
    assert!(store.retry_task(call.id, call.kind.clone(), due).await.unwrap());
    assert!(!store.retry_task(call.id, call.kind.clone(), due).await.unwrap(), "given back: no longer held");
    assert_eq!(millis(store.next_due().await.unwrap()), millis(Some(due)));
    let early = store.claim_due(10).await.unwrap();
    // A machine busy enough to take a second over the above may claim it
    // rightly; before its time, a claim is wrong however busy.
    let claimed = if Utc::now() < due {
        assert!(early.is_empty(), "not before it is due");
        claim_when_due(&*store).await
    } else {
        early
    };
    assert!(Utc::now() >= due);
    assert_eq!(rows(&claimed), [call.id.row], "claimed once due");
    assert_eq!(millis(store.next_due().await.unwrap()), millis(Some(expected)));
}

/// A node paused past its lease claims its own task again on waking, while
/// its older attempt is still in flight: both are this node's, and only the
/// epoch of the claim tells them apart. (The lease here ends by `release`,
/// the store's own way to end one without waiting it out; the backends'
/// suites also let one run out.)
pub async fn a_task_claimed_again_by_the_same_node_fences_the_earlier_claims_token(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "", "");
    let op = create(&*store, new_op(&wf, None, None)).await;
    let old = call_of(&op.tasks).clone();
    store.release().await.unwrap();
    let claimed = store.claim_due(10).await.unwrap();
    assert_eq!(rows(&claimed), [old.id.row], "the same task, claimed again by the same node");
    let new = claimed[0].id;
    assert_ne!(new, old.id, "a new claim, a new token: {new} after {}", old.id);

    let late = apply(&*store, &wf, &op.op.id, Some(old.id), answer(1, Outcome::Done(serde_json::json!({})))).await;
    assert!(matches!(late, TransitionResult::Missing), "the earlier claim's answer is refused: {late:?}");
    assert!(!store.finish_task(old.id).await.unwrap(), "nor can it finish the task");
    assert!(!store.retry_task(old.id, old.kind.clone(), Utc::now()).await.unwrap(), "nor give it back");
    let letter = super::dead_letters::letter(crate::DeadLetterKind::Step, "w", &op.op.id, None);
    assert!(!store.dead_letter(old.id, letter).await.unwrap(), "nor set it aside");
    let stored = get(&*store, &op.op.id).await;
    assert_eq!((stored.steps[0].status, stored.last_seq), (StepState::Running, op.op.last_seq), "nothing written");
    assert!(store.dead_letters(crate::DeadLetterFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());

    let done = apply(&*store, &wf, &op.op.id, Some(new), answer(1, Outcome::Done(serde_json::json!({})))).await;
    assert!(matches!(done, TransitionResult::Applied(ref a) if a.op.is_final()), "the new token works: {done:?}");
    assert!(!store.finish_task(new).await.unwrap(), "consumed with the answer");
}

/// As above, the lease really running out: `store` runs as a node whose
/// lease is short (a few hundred milliseconds), outside the macro's list
/// because a harness's node keeps its leases for the whole test.
pub async fn a_lease_that_ran_out_is_claimed_again_by_its_own_node_under_a_new_token(store: &dyn crate::Store) {
    let wf = workflow("w", "", "");
    let op = create(store, new_op(&wf, None, None)).await;
    let old = call_of(&op.tasks).clone();
    assert!(old.owned && store.claim_due(10).await.unwrap().is_empty(), "held, and the lease still runs");

    let again = claim_when_due(store).await;

    assert_eq!(rows(&again), [old.id.row], "claimed again once the lease ran out");
    let late = apply(store, &wf, &op.op.id, Some(old.id), answer(1, Outcome::Done(serde_json::json!({})))).await;
    assert!(matches!(late, TransitionResult::Missing), "the paused attempt's answer is refused: {late:?}");
    assert!(!store.finish_task(old.id).await.unwrap());
    assert!(!store.retry_task(old.id, old.kind.clone(), Utc::now()).await.unwrap());
    assert_eq!(get(store, &op.op.id).await.last_seq, op.op.last_seq, "nothing written");
    assert!(store.finish_task(again[0].id).await.unwrap(), "the new claim's token works");
}
