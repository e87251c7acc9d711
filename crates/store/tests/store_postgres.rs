//! The PostgreSQL store against the store contract, and what only a
//! database shared by several nodes can show: two nodes racing for one
//! key, claims that never overlap, a lease that runs out and is taken.
//!
//! Each test runs in a schema of its own, dropped afterwards. They need a
//! PostgreSQL server at `HERALD_TEST_POSTGRES` (by default
//! `postgres://postgres@127.0.0.1:5432/test`); without one they fail,
//! saying what to start.

use std::{str::FromStr, sync::Arc, time::Duration};

use herald_core::OperationId;
use herald_store::{
    Accepted, IdempotencyKey, Node, Store,
    contract::{self, Harness, concurrency, create, new_op, workflow},
    postgres::PgStore,
};
use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection,
    postgres::{PgConnectOptions, PgPoolOptions},
};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own in the test database, dropped with it.
struct Schema {
    base: PgConnectOptions,
    name: String,
}

impl Schema {
    async fn new() -> Self {
        let url = std::env::var("HERALD_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.into());
        let base = PgConnectOptions::from_str(&url).expect("HERALD_TEST_POSTGRES is a postgres:// URL");
        let mut admin = base.connect().await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {url} ({e}). These tests need it: start PostgreSQL (15 or later) \
                 there with trust auth for user `postgres` and a database `test`, or point HERALD_TEST_POSTGRES \
                 at one that runs."
            )
        });
        let name = format!("herald_test_{:016x}", rand::random::<u64>());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
        Schema { base, name }
    }

    /// Connections whose tables are this schema's.
    fn options(&self) -> PgConnectOptions {
        self.base.clone().options([("search_path", self.name.as_str())])
    }

    async fn store(&self, node: Node) -> Arc<PgStore> {
        let pool = PgPoolOptions::new().max_connections(4).connect_with(self.options()).await.unwrap();
        Arc::new(PgStore::on(pool, node).await.unwrap())
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop cannot await: the schema goes from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let mut c = base.connect().await?;
                sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).execute(&mut c).await?;
                c.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("the test schema {} was not dropped: {dropped:?}", self.name);
        }
    }
}

struct Shared {
    store: Arc<PgStore>,
    schema: Schema,
}

impl Harness for Shared {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Garbage where the operation's state is kept, written past the store
    /// on a connection of its own.
    async fn corrupt_operation(&self, id: &OperationId) {
        let mut c = self.schema.options().connect().await.unwrap();
        let changed = sqlx::query("UPDATE operations SET state = '{\"id\": ' WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(changed, 1, "no stored operation {id}");
    }
}

async fn shared() -> Shared {
    let schema = Schema::new().await;
    Shared { store: schema.store(contract::node()).await, schema }
}

mod contract_suite {
    use super::*;
    herald_store::contract_tests!(shared());
}

fn node(id: &str, lease: chrono::Duration) -> Node {
    Node { id: id.into(), lease }
}

/// Two nodes on one schema.
async fn two_nodes(lease: chrono::Duration) -> (Schema, Arc<PgStore>, Arc<PgStore>) {
    let schema = Schema::new().await;
    let (a, b) = (schema.store(node("a", lease)).await, schema.store(node("b", lease)).await);
    (schema, a, b)
}

#[tokio::test]
async fn two_nodes_accepting_one_idempotency_key_at_once_make_one_operation() {
    let (_schema, a, b) = two_nodes(chrono::Duration::minutes(10)).await;
    // With a concurrency key too: the replay must answer before the policy.
    let wf = workflow("w", &concurrency("reject"), "");
    for round in 0..10 {
        let subject = format!("s{round}");
        let keyed = || {
            let mut new = new_op(&wf, Some(&subject), Some(&subject));
            new.idempotency = Some(IdempotencyKey { key: format!("k{round}"), request_hash: "h".into() });
            new
        };
        let (first, second) = tokio::join!(a.accept(keyed()), b.accept(keyed()));
        let (first, second) = (first.unwrap(), second.unwrap());
        let (made, replayed) = match (&first, &second) {
            (Accepted::Created(made), Accepted::Existing(op)) | (Accepted::Existing(op), Accepted::Created(made)) => {
                (made.op.id.clone(), op.id.clone())
            }
            other => panic!("one operation and one replay, got {other:?}"),
        };
        assert_eq!(made, replayed, "the replay answers the operation the key made");
    }
}

#[tokio::test]
async fn two_nodes_accepting_one_concurrency_key_at_once_let_one_through() {
    let (_schema, a, b) = two_nodes(chrono::Duration::minutes(10)).await;
    let wf = workflow("w", &concurrency("reject"), "");
    for round in 0..10 {
        let subject = format!("s{round}");
        let (first, second) = tokio::join!(
            a.accept(new_op(&wf, Some(&subject), Some(&subject))),
            b.accept(new_op(&wf, Some(&subject), Some(&subject)))
        );
        match (first.unwrap(), second.unwrap()) {
            (Accepted::Created(made), Accepted::Conflict(holder))
            | (Accepted::Conflict(holder), Accepted::Created(made)) => assert_eq!(made.op.id, holder),
            other => panic!("one accepted and one refused, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn nodes_claiming_at_once_never_get_the_same_task() {
    let (_schema, a, b) = two_nodes(chrono::Duration::minutes(10)).await;
    let wf = workflow("w", "", "");
    let mut made = Vec::new();
    for _ in 0..20 {
        made.extend(create(&*a, new_op(&wf, None, None)).await.tasks.iter().filter(|t| t.owned).map(|t| t.id));
    }
    a.release().await.unwrap();

    let (mine, theirs) = tokio::join!(a.claim_due(15), b.claim_due(15));
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());

    let mut all: Vec<_> = mine.iter().chain(&theirs).map(|t| t.id).collect();
    all.sort();
    made.sort();
    assert_eq!(all, made, "every task claimed once, by one node");
    assert!(a.claim_due(100).await.unwrap().is_empty() && b.claim_due(100).await.unwrap().is_empty());
    for t in &theirs {
        assert!(!a.finish_task(t.id).await.unwrap(), "another node's task is not this one's to finish");
        assert!(b.finish_task(t.id).await.unwrap());
    }
}

#[tokio::test]
async fn a_task_whose_lease_ran_out_is_claimed_by_another_node_and_fenced_from_the_first() {
    let (_schema, a, b) = two_nodes(chrono::Duration::milliseconds(300)).await;
    let wf = workflow("w", "", "");
    let made = create(&*a, new_op(&wf, None, None)).await;
    let task = made.tasks.iter().find(|t| t.owned).expect("a task held by the node that made it").clone();
    assert!(b.claim_due(10).await.unwrap().is_empty(), "held, and the lease still runs");

    let taken = contract::claim_when_due(&*b).await;

    assert_eq!(taken.iter().map(|t| t.id).collect::<Vec<_>>(), [task.id], "taken once the lease ran out");
    let late = contract::apply(&*a, &wf, &made.op.id, Some(task.id), herald_core::Command::Discard).await;
    assert!(matches!(late, herald_store::TransitionResult::Missing), "the first node is fenced off: {late:?}");
    assert!(!a.retry_task(task.id, task.kind.clone(), chrono::Utc::now()).await.unwrap());
    assert!(b.finish_task(task.id).await.unwrap(), "the node that took it finishes it");
}

#[tokio::test]
async fn a_postgres_url_opens_the_shared_store_and_topics_are_refused_by_name() {
    let schema = Schema::new().await;
    let url = std::env::var("HERALD_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.into());
    let sep = if url.contains('?') { '&' } else { '?' };
    let config = herald_store::StoreConfig {
        url: format!("{url}{sep}options=-csearch_path%3D{}", schema.name),
        node: contract::node(),
        dedupe_window: Duration::from_secs(60),
    };
    let opened = herald_store::open(&config).await.unwrap();
    assert!(opened.store.list(Default::default()).await.unwrap().is_empty());
    assert_eq!(opened.store.secret(vec![1]).await.unwrap(), [1]);
    assert_eq!(opened.store.secret(vec![2]).await.unwrap(), [1], "the first secret stays");
    assert!(opened.broker.subscriptions().await.unwrap().is_empty());
    let refused = opened.broker.publish("t", vec![]).await.unwrap_err().to_string();
    assert!(refused.contains("topics on PostgreSQL"), "{refused}");
    opened.store.erase_residue().await.unwrap();
}
