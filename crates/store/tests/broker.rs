//! The embedded broker against the broker contract, plus what only a
//! store on disk can show: events and subscriptions outlive the process's
//! hold on the file, and the dedupe window ends.

use std::{sync::Arc, time::Duration};

use herald_broker::{
    Broker, DeadLetters,
    contract::{self, Harness},
};
use herald_store::{EventDeadLetters, Node, sqlite::SqliteStore};
use serde_json::json;

struct Embedded {
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl Harness for Embedded {
    fn broker(&self) -> Arc<dyn Broker> {
        self.store.clone()
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        Arc::new(EventDeadLetters(self.store.clone()))
    }
}

fn node() -> Node {
    Node { id: "test".into(), lease: chrono::Duration::seconds(60) }
}

async fn embedded() -> Embedded {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), node()).unwrap());
    Embedded { store, _dir: dir }
}

mod contract_suite {
    use super::*;
    herald_broker::contract_tests!(embedded());
}

#[tokio::test]
async fn events_and_subscriptions_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), node()).unwrap();
        store.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
        store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
        let leased = store.pull("s", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(leased.len(), 1);
    }
    let store = SqliteStore::open(dir.path(), node()).unwrap();
    assert!(store.subscription("s").await.unwrap().is_some());
    let stats = store.stats("s").await.unwrap();
    assert_eq!((stats.pending, stats.in_flight), (0, 1), "still out with its puller until the lease ends");
}

/// What herald's own dispatcher held when its process died (a push
/// subscription's events, and those `await` steps wait for) is due again
/// at once on reopening: nobody holds those leases any more, and waiting
/// them out could outlast an await's timeout. A puller's lease stays.
#[tokio::test]
async fn events_herald_was_delivering_itself_go_out_again_at_once_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let internal = herald_broker::Subscription::internal("t", vec!["T".into()]);
    let push = contract::subscription("p", json!({"topic": "t", "push": {"service": "svc", "path": "/e"}}));
    let pull = contract::subscription("s", json!({"topic": "t"}));
    {
        let store = SqliteStore::open(dir.path(), node()).unwrap();
        for sub in [&internal, &push, &pull] {
            store.put_subscription(sub).await.unwrap();
        }
        store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
        for sub in [&internal, &push, &pull] {
            let lease = sub.dispatch_lease().unwrap_or(Duration::from_secs(60));
            assert_eq!(store.pull(&sub.name, 10, lease).await.unwrap().len(), 1, "{} leased it", sub.name);
        }
    } // the process dies with the leases held
    let store = SqliteStore::open(dir.path(), node()).unwrap();
    for sub in [&internal, &push] {
        let lease = sub.dispatch_lease().unwrap();
        assert_eq!(store.pull(&sub.name, 10, lease).await.unwrap().len(), 1, "{} has it again at once", sub.name);
    }
    let stats = store.stats("s").await.unwrap();
    assert_eq!((stats.pending, stats.in_flight), (0, 1), "the puller keeps its lease");
}

#[tokio::test]
async fn a_republish_after_the_window_is_a_new_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), node()).unwrap().with_dedupe_window(Duration::from_millis(200));
    store.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    let within = store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();

    assert!(within[0].duplicate);
    assert!(!after[0].duplicate, "the window has passed");
    assert_eq!(store.pull("s", 10, Duration::from_secs(60)).await.unwrap().len(), 2);
}

#[tokio::test]
async fn housekeeping_forgets_what_nobody_needs_and_keeps_what_is_owed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), node()).unwrap().with_dedupe_window(Duration::from_millis(1));
    store.put_subscription(&contract::subscription("s", json!({"topic": "t"}))).await.unwrap();
    store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap();
    store.publish("nobody-listens", vec![contract::event("e2", "T", None)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    store.maintain().await.unwrap();

    let m = store.pull("s", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(m.len(), 1, "an event still owed is kept");
    assert!(
        !store.publish("t", vec![contract::event("e1", "T", None)]).await.unwrap()[0].duplicate,
        "its id was forgotten"
    );
}
