//! Reading back: timelines after a sequence, lists with filters and
//! cursors, and rows that cannot be read.

use herald_core::{OpStatus, OperationId};

use super::{Harness, applied, cancel, concurrency, create, new_op, workflow};
use crate::{Error, ListQuery};

fn ids(ops: &[herald_core::Operation]) -> Vec<OperationId> {
    ops.iter().map(|o| o.id.clone()).collect()
}

pub async fn events_come_after_a_sequence_oldest_first_up_to_a_limit(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "", "");
    let op = create(&*store, new_op(&wf, None, None)).await;
    let ended = applied(&*store, &wf, &op.op.id, None, cancel()).await;
    let last = ended.op.last_seq;
    assert!(last >= 4, "enough events to page through: {last}");
    let seqs = |events: Vec<herald_core::Event>| events.iter().map(|e| e.seq).collect::<Vec<_>>();

    let all = store.events(&op.op.id, 0, 100).await.unwrap();
    let page = store.events(&op.op.id, 1, 2).await.unwrap();
    let after_last = store.events(&op.op.id, last, 100).await.unwrap();

    assert_eq!(seqs(all.clone()), (1..=last).collect::<Vec<_>>());
    assert_eq!(all[..op.events.len()], op.events[..], "as committed");
    assert_eq!(seqs(page), [2, 3]);
    assert!(after_last.is_empty());
    assert!(store.events(&OperationId::new(chrono::Utc::now(), [3; 10]), 0, 10).await.unwrap().is_empty());
}

pub async fn lists_are_newest_first_filtered_and_paged_by_cursor(h: &impl Harness) {
    let store = h.store();
    // Queued workflows: an operation not yet started ends as soon as it is cancelled.
    let queued = &concurrency("queue");
    let (orders, refunds) = (workflow("orders", queued, ""), workflow("refunds", queued, ""));
    let a = create(&*store, new_op(&orders, Some("ann"), Some("ann"))).await.op.id.clone();
    let b = create(&*store, new_op(&refunds, Some("bob"), Some("bob"))).await.op.id.clone();
    let c = create(&*store, new_op(&orders, Some("bob"), Some("bob"))).await.op.id.clone();
    applied(&*store, &orders, &c, None, cancel()).await;
    let list = |q: ListQuery| {
        let store = store.clone();
        async move { ids(&store.list(q).await.unwrap()) }
    };
    let all = ListQuery { limit: 10, ..Default::default() };

    assert_eq!(list(all.clone()).await, [c.clone(), b.clone(), a.clone()], "newest first");
    assert_eq!(list(ListQuery { limit: 2, ..all.clone() }).await, [c.clone(), b.clone()]);
    assert_eq!(list(ListQuery { before: Some(b.clone()), ..all.clone() }).await, vec![a.clone()], "the next page");
    assert_eq!(list(ListQuery { subject: Some("bob".into()), ..all.clone() }).await, [c.clone(), b.clone()]);
    assert_eq!(list(ListQuery { workflow: Some("orders".into()), ..all.clone() }).await, [c.clone(), a.clone()]);
    assert_eq!(list(ListQuery { status: Some(OpStatus::Cancelled), ..all.clone() }).await, vec![c.clone()]);
    let waiting = ListQuery { status: Some(OpStatus::Accepted), workflow: Some("orders".into()), ..all.clone() };
    assert_eq!(list(waiting).await, vec![a.clone()], "filters combine");
    assert!(list(ListQuery { subject: Some("cat".into()), ..all }).await.is_empty());
}

pub async fn a_list_leaves_out_an_operation_it_cannot_read(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "", "");
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(create(&*store, new_op(&wf, None, None)).await.op.id.clone());
    }

    h.corrupt_operation(&made[1]).await;

    let listed = store.list(ListQuery { limit: 10, ..Default::default() }).await;
    assert_eq!(ids(&listed.expect("the list still answers")), [made[2].clone(), made[0].clone()]);
    assert!(matches!(store.get(&made[1]).await, Err(Error::Corrupt(_))), "read alone, it is an error, not a panic");
    assert!(store.get(&made[0]).await.unwrap().is_some());
}
