//! The inbox: one notification per operation, rewritten as it moves, paged
//! by version, counted and marked read.

use herald_core::{OpStatus, notify::Notification};

use super::{Harness, applied, cancel, concurrency, create, new_op, workflow};
use crate::{InboxPage, Store};

/// Three operations of `ann`'s, not started (a cancel ends them at once),
/// each told to her inbox as accepted; their notification ids, oldest first.
async fn three_for_ann(store: &dyn Store) -> (std::sync::Arc<herald_core::Workflow>, Vec<herald_core::OperationId>) {
    let wf = workflow("w", &concurrency("queue"), "");
    let mut ops = Vec::new();
    for key in ["1", "2", "3"] {
        let made = create(store, new_op(&wf, Some("ann"), Some(key))).await;
        let (subject, change) = *made.inbox.clone().expect("an inbox change");
        assert_eq!((subject.as_str(), change.unread), ("ann", ops.len() as u64 + 1));
        assert_eq!(change.notification.operation_id, made.op.id);
        ops.push(made.op.id.clone());
    }
    (wf, ops)
}

fn versions(page: &[Notification]) -> Vec<u64> {
    page.iter().map(|n| n.version).collect()
}

pub async fn inbox_pages_go_newest_first_before_a_version_and_oldest_first_after_one(h: &impl Harness) {
    let store = h.store();
    let (wf, ops) = three_for_ann(&*store).await;

    let ended = applied(&*store, &wf, &ops[0], None, cancel()).await;

    let (subject, change) = *ended.inbox.expect("the notification is rewritten");
    assert_eq!(subject, "ann");
    assert_eq!((change.notification.version, change.notification.notice.status), (4, OpStatus::Cancelled));
    assert_eq!(change.notification.id, Notification::id_for(&ops[0]), "the same notification, rewritten");
    let page = |p| {
        let store = store.clone();
        async move { store.notifications("ann", p).await.unwrap() }
    };
    let newest = page(InboxPage::Before { version: None, limit: 10 }).await;
    assert_eq!(versions(&newest), [4, 3, 2], "one per operation, newest change first");
    assert_eq!(newest[0].operation_id, ops[0]);
    assert_eq!(versions(&page(InboxPage::Before { version: Some(4), limit: 1 }).await), [3]);
    assert_eq!(versions(&page(InboxPage::After { version: 2, limit: 10 }).await), [3, 4], "a stream's resume");
    assert_eq!(versions(&page(InboxPage::After { version: 2, limit: 1 }).await), [3]);
    assert_eq!(store.unread("ann").await.unwrap(), 3);
    assert!(store.notifications("bob", InboxPage::Before { version: None, limit: 10 }).await.unwrap().is_empty());
    assert_eq!(store.unread("bob").await.unwrap(), 0);
}

pub async fn marking_read_answers_each_change_with_the_unread_count(h: &impl Harness) {
    let store = h.store();
    let (_, ops) = three_for_ann(&*store).await;
    let second = Notification::id_for(&ops[1]);

    let one = store.mark_read("ann", Some(&second)).await.unwrap();
    let again = store.mark_read("ann", Some(&second)).await.unwrap();
    let unknown = store.mark_read("ann", Some("nt_nothing")).await.unwrap();
    let not_hers = store.mark_read("bob", Some(&Notification::id_for(&ops[0]))).await.unwrap();

    assert_eq!(one.len(), 1);
    assert_eq!((one[0].notification.id.as_str(), one[0].notification.read), (second.as_str(), true));
    assert_eq!((one[0].notification.version, one[0].unread), (4, 2), "a change takes the next version");
    assert!(again.is_empty() && unknown.is_empty() && not_hers.is_empty(), "nothing changed, nothing told");
    assert!(store.notification("ann", &second).await.unwrap().expect("hers").read);
    assert_eq!(store.notification("bob", &second).await.unwrap(), None, "another subject's is not found");

    let rest = store.mark_read("ann", None).await.unwrap();

    let ids: Vec<_> = rest.iter().map(|c| c.notification.id.clone()).collect();
    assert_eq!(ids, [Notification::id_for(&ops[0]), Notification::id_for(&ops[2])], "oldest change first");
    assert!(rest.iter().all(|c| c.notification.read && c.unread == 0));
    assert_eq!(versions(&rest.into_iter().map(|c| c.notification).collect::<Vec<_>>()), [5, 6]);
    assert_eq!(store.unread("ann").await.unwrap(), 0);
}
