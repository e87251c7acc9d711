//! Accepting operations: idempotency keys, and the concurrency policies.

use herald_core::{OpStatus, TaskKind};

use super::{Harness, applied, cancel, concurrency, create, get, new_op, workflow};
use crate::{Accepted, IdempotencyKey, ListQuery};

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
