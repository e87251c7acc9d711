//! Accepting operations: idempotency keys, and the concurrency policies.

use herald_core::{OpStatus, Rejection, TaskKind, concurrency::Choice};

use super::{Harness, applied, cancel, concurrency, create, get, new_op, workflow};
use crate::{Accepted, IdempotencyKey, ListQuery, TransitionResult};

fn keyed(key: &str, hash: &str) -> Option<IdempotencyKey> {
    Some(IdempotencyKey { key: key.into(), request_hash: hash.into() })
}

pub async fn a_replayed_idempotency_key_answers_what_its_first_request_made(h: &impl Harness) {
    let store = h.store();
    let (orders, refunds) = (workflow("orders", "", ""), workflow("refunds", "", ""));
    let with_key = |wf, hash| {
        let mut new = new_op(wf, None, None);
        new.idempotency = keyed("k1", hash);
        new
    };
    let first = create(&*store, with_key(&orders, "body-1")).await;

    let same = store.accept(with_key(&orders, "body-1")).await.unwrap();
    let other_body = store.accept(with_key(&orders, "body-2")).await.unwrap();
    let other_workflow = store.accept(with_key(&refunds, "body-1")).await.unwrap();

    match same {
        Accepted::Existing(op) => assert_eq!(op.id, first.op.id, "the same request gets the first operation"),
        other => panic!("a replay must answer the stored operation, got {other:?}"),
    }
    assert!(matches!(other_body, Accepted::KeyReused(id) if id == first.op.id), "another body under the key");
    assert!(matches!(other_workflow, Accepted::Created(_)), "keys are per workflow");
    let stored = store.list(ListQuery { workflow: Some("orders".into()), limit: 10, ..Default::default() }).await;
    assert_eq!(stored.unwrap().len(), 1, "a replay stores nothing");
}

pub async fn reject_refuses_a_second_operation_with_the_key_naming_the_first(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", &concurrency("reject"), "");
    let first = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;

    let second = store.accept(new_op(&wf, Some("ann"), Some("ann"))).await.unwrap();
    let other_key = store.accept(new_op(&wf, Some("bob"), Some("bob"))).await.unwrap();
    applied(&*store, &wf, &first.op.id, None, cancel()).await;
    let after_the_end = store.accept(new_op(&wf, Some("ann"), Some("ann"))).await.unwrap();

    assert!(matches!(second, Accepted::Conflict(id) if id == first.op.id), "refused, naming the holder");
    assert!(matches!(other_key, Accepted::Created(_)), "another key is free");
    assert!(matches!(after_the_end, Accepted::Created(_)), "the key is free once its holder ended");
}

pub async fn queue_puts_a_new_operation_behind_the_last_and_starts_it_when_the_head_ends(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", &concurrency("queue"), "");
    let head = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;
    let second = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;
    let third = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;
    let starts = |tasks: &[crate::Task]| {
        tasks.iter().filter(|t| t.kind == TaskKind::Start).map(|t| t.op.clone()).collect::<Vec<_>>()
    };

    assert_eq!(starts(&head.tasks), vec![head.op.id.clone()], "the head starts at once");
    assert_eq!(second.op.queued_behind.as_ref(), Some(&head.op.id));
    assert_eq!(third.op.queued_behind.as_ref(), Some(&second.op.id), "behind the last in line");
    assert!(starts(&second.tasks).is_empty() && starts(&third.tasks).is_empty(), "queued ones wait");

    let ended = applied(&*store, &wf, &head.op.id, None, cancel()).await;

    assert_eq!(starts(&ended.tasks), vec![second.op.id.clone()], "the next in line starts, in the same commit");
    assert!(ended.tasks.iter().all(|t| t.owned), "due now: leased to this node at once");
    assert_eq!(get(&*store, &second.op.id).await.queued_behind, None);
    assert_eq!(get(&*store, &third.op.id).await.queued_behind.as_ref(), Some(&second.op.id), "still waiting");

    let ended = applied(&*store, &wf, &second.op.id, None, cancel()).await;
    assert_eq!(starts(&ended.tasks), vec![third.op.id.clone()]);
}

pub async fn supersede_cancels_the_older_operations_in_the_same_accept(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", &concurrency("supersede"), "");
    let older = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;

    let newer = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;

    assert_eq!(newer.others.len(), 1, "the older one changed in the same commit");
    assert_eq!(newer.others[0].op.id, older.op.id);
    assert_eq!(newer.others[0].op.status, OpStatus::Cancelled, "not started: it ends at once");
    assert_eq!(get(&*store, &older.op.id).await.status, OpStatus::Cancelled);
    let started: Vec<_> = newer.others[0].tasks.iter().filter(|t| t.kind == TaskKind::Start).collect();
    assert_eq!(started.len(), 1, "its end lets the newer one start");
    assert_eq!(started[0].op, newer.op.id);
    assert_eq!(get(&*store, &newer.op.id).await.queued_behind, None);
}

pub async fn a_superseding_operation_waits_until_the_older_one_has_wound_down(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", &concurrency("supersede"), "");
    let older = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;
    let start = older.tasks.iter().find(|t| t.kind == TaskKind::Start).expect("a start task").id;
    let running = applied(&*store, &wf, &older.op.id, Some(start), herald_core::Command::Start).await;
    let call = running.tasks.iter().find(|t| matches!(t.kind, TaskKind::Invoke { .. })).expect("a call").id;

    let newer = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;

    assert_eq!(newer.others[0].op.status, OpStatus::Compensating, "its call is still out");
    assert_eq!(newer.op.queued_behind.as_ref(), Some(&older.op.id));
    assert!(newer.tasks.iter().chain(&newer.others[0].tasks).all(|t| t.kind != TaskKind::Start), "it waits");

    let done = herald_core::machine::Outcome::Done(serde_json::json!({}));
    let ended = applied(&*store, &wf, &older.op.id, Some(call), super::answer(1, done)).await;

    assert!(ended.op.is_final(), "{:?}", ended.op.status);
    assert!(ended.tasks.iter().any(|t| t.kind == TaskKind::Start && t.op == newer.op.id), "now it starts");
}

/// The choice for `id`, made through [`crate::Store::decide`] with the
/// supersede function the engine gives it.
async fn decide(
    store: &dyn crate::Store,
    wf: &std::sync::Arc<herald_core::Workflow>,
    id: &herald_core::OperationId,
    choice: Choice,
) -> TransitionResult {
    let now = chrono::Utc::now();
    let (wf, by) = (wf.clone(), id.clone());
    let apply_wf = wf.clone();
    let f = Box::new(move |op: &mut herald_core::Operation| {
        herald_core::machine::apply(op, &apply_wf, herald_core::Command::Decide { choice }, now)
    });
    let supersede: crate::SupersedeFn = std::sync::Arc::new(move |older: &mut herald_core::Operation| {
        herald_core::machine::apply(older, &wf, herald_core::Command::Supersede { by: by.clone() }, now)
            .unwrap_or_default()
    });
    store.decide(id, None, f, supersede).await.expect("decide")
}

pub async fn ask_holds_a_new_operation_for_its_users_choice_and_it_holds_the_line(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", &concurrency("ask"), "");
    let head = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;

    let asked = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;

    assert_eq!(asked.op.status, OpStatus::AwaitingDecision);
    assert_eq!(asked.op.decision.as_ref().and_then(|d| d.with.as_ref()), Some(&head.op.id));
    assert!(asked.tasks.iter().all(|t| t.kind != TaskKind::Start), "it waits for the choice");
    let ended = applied(&*store, &wf, &head.op.id, None, cancel()).await;
    assert!(ended.tasks.iter().all(|t| t.kind != TaskKind::Start), "the holder's end starts nothing unchosen");
    assert_eq!(get(&*store, &asked.op.id).await.status, OpStatus::AwaitingDecision);

    // Keeping: it ends without running; a second choice is refused and writes nothing.
    let TransitionResult::Applied(kept) = decide(&*store, &wf, &asked.op.id, Choice::Keep).await else {
        panic!("the choice applies")
    };
    assert_eq!(kept.op.status, OpStatus::Cancelled);
    assert!(kept.others.is_empty());
    let again = decide(&*store, &wf, &asked.op.id, Choice::Replace).await;
    assert!(matches!(again, TransitionResult::Rejected(Rejection::NothingToDecide)), "{again:?}");
    assert_eq!(get(&*store, &asked.op.id).await.last_seq, kept.op.last_seq);
}

pub async fn replacing_supersedes_the_others_in_the_same_transaction_and_starts_once_they_end(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", &concurrency("ask"), "");
    let head = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;
    let start = head.tasks.iter().find(|t| t.kind == TaskKind::Start).expect("a start task").id;
    let running = applied(&*store, &wf, &head.op.id, Some(start), herald_core::Command::Start).await;
    let call = running.tasks.iter().find(|t| matches!(t.kind, TaskKind::Invoke { .. })).expect("a call").id;
    let asked = create(&*store, new_op(&wf, Some("ann"), Some("ann"))).await;

    let TransitionResult::Applied(chose) = decide(&*store, &wf, &asked.op.id, Choice::Replace).await else {
        panic!("the choice applies")
    };

    assert_eq!(chose.others.len(), 1, "the running one changed in the same commit");
    assert_eq!(chose.others[0].op.id, head.op.id);
    assert_eq!(get(&*store, &head.op.id).await.status, OpStatus::Compensating, "its call is still out");
    assert_eq!(chose.op.queued_behind.as_ref(), Some(&head.op.id));
    assert!(chose.tasks.iter().all(|t| t.kind != TaskKind::Start), "it waits for the other to wind down");

    let done = herald_core::machine::Outcome::Done(serde_json::json!({}));
    let ended = applied(&*store, &wf, &head.op.id, Some(call), super::answer(1, done)).await;
    assert!(ended.op.is_final(), "{:?}", ended.op.status);
    assert!(ended.tasks.iter().any(|t| t.kind == TaskKind::Start && t.op == asked.op.id), "now it starts");
}
