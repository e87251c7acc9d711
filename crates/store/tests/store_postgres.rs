//! The PostgreSQL store against the store contract, and what only a
//! database shared by several nodes can show: two nodes racing for one
//! key, claims that never overlap, a lease that runs out and is taken.
//!
//! Each test runs in a schema of its own, dropped afterwards
//! ([`TestSchema`]); without a server they fail, saying what to start.

use std::{sync::Arc, time::Duration};

use herald_core::OperationId;
use herald_store::{
    Accepted, IdempotencyKey, Node, Store,
    contract::{self, Harness, concurrency, create, new_op, postgres::TestSchema, workflow},
    postgres::PgStore,
};
use sqlx::{ConnectOptions, Connection};

struct Shared {
    store: Arc<PgStore>,
    schema: TestSchema,
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
    let schema = TestSchema::new().await;
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
async fn two_nodes(lease: chrono::Duration) -> (TestSchema, Arc<PgStore>, Arc<PgStore>) {
    let schema = TestSchema::new().await;
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
        made.extend(create(&*a, new_op(&wf, None, None)).await.tasks.iter().filter(|t| t.owned).map(|t| t.id.row));
    }
    a.release().await.unwrap();

    let (mine, theirs) = tokio::join!(a.claim_due(15), b.claim_due(15));
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());

    let mut all: Vec<_> = mine.iter().chain(&theirs).map(|t| t.id.row).collect();
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

    assert_eq!(taken.iter().map(|t| t.id.row).collect::<Vec<_>>(), [task.id.row], "taken once the lease ran out");
    let late = contract::apply(&*a, &wf, &made.op.id, Some(task.id), herald_core::Command::Discard).await;
    assert!(matches!(late, herald_store::TransitionResult::Missing), "the first node is fenced off: {late:?}");
    assert!(!a.retry_task(task.id, task.kind.clone(), chrono::Utc::now()).await.unwrap());
    assert!(b.finish_task(taken[0].id).await.unwrap(), "the node that took it finishes it");
}

#[tokio::test]
async fn a_lease_that_ran_out_is_claimed_again_by_its_own_node_under_a_new_token() {
    let schema = TestSchema::new().await;
    let store = schema.store(node("a", chrono::Duration::milliseconds(300))).await;
    contract::a_lease_that_ran_out_is_claimed_again_by_its_own_node_under_a_new_token(&*store).await;
}

#[tokio::test]
async fn a_postgres_url_opens_the_shared_store_and_its_broker() {
    let schema = TestSchema::new().await;
    let config = herald_store::StoreConfig {
        url: schema.url(),
        node: contract::node(),
        dedupe_window: Duration::from_secs(60),
        pool: None,
    };
    let opened = herald_store::open(&config).await.unwrap();
    assert!(opened.store.list(Default::default()).await.unwrap().is_empty());
    assert_eq!(opened.store.secret(vec![1]).await.unwrap(), [1]);
    assert_eq!(opened.store.secret(vec![2]).await.unwrap(), [1], "the first secret stays");
    assert!(opened.broker.subscriptions().await.unwrap().is_empty());
    let sub = herald_broker::contract::subscription("s", serde_json::json!({"topic": "t"}));
    opened.broker.put_subscription(&sub).await.unwrap();
    opened.broker.publish("t", vec![herald_broker::contract::event("e1", "T", None)]).await.unwrap();
    assert_eq!(opened.broker.pull("s", 10, Duration::from_secs(60)).await.unwrap().len(), 1, "topics work");
    opened.store.erase_residue().await.unwrap();
}

#[tokio::test]
async fn an_accept_that_loses_its_idempotency_key_at_commit_answers_as_a_replay() {
    let schema = TestSchema::new().await;
    let store = schema.store(contract::node()).await;
    let wf = workflow("w", "", "");
    let first = create(&*store, new_op(&wf, None, None)).await.op.id.clone();
    // Another writer takes the key without its lock, and has not committed
    // when the accept writes the same key: only the primary key stops it.
    let mut other = schema.options().connect().await.unwrap();
    let mut taking = other.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO idempotency (workflow, key, request_hash, op_id, created_at) VALUES ('w', 'k', 'h', $1, 0)",
    )
    .bind(first.to_string())
    .execute(&mut *taking)
    .await
    .unwrap();
    let mut new = new_op(&wf, None, None);
    new.idempotency = Some(IdempotencyKey { key: "k".into(), request_hash: "h".into() });
    let accepting = tokio::spawn({
        let store = store.clone();
        async move { store.accept(new).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!accepting.is_finished(), "the accept waits on the uncommitted key");

    taking.commit().await.unwrap();
    let answer = accepting.await.unwrap().unwrap();

    assert!(matches!(answer, Accepted::Existing(ref op) if op.id == first), "{answer:?}");
    let stored = store.list(herald_store::ListQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(stored.len(), 1, "the losing accept wrote nothing");
}

/// How many rows of `table` this schema holds.
async fn count(schema: &TestSchema, table: &str) -> i64 {
    let mut c = schema.options().connect().await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(&mut c).await.unwrap()
}

/// A schema of its own, one node on it, and an operation that node made.
async fn one_made() -> (TestSchema, Arc<PgStore>, Arc<herald_core::Workflow>, herald_store::Applied) {
    let schema = TestSchema::new().await;
    let store = schema.store(contract::node()).await;
    let wf = workflow("w", "", "");
    let made = create(&*store, new_op(&wf, None, None)).await;
    (schema, store, wf, made)
}

#[tokio::test]
async fn an_accept_that_fails_writes_none_of_its_rows() {
    let (schema, store, wf, first) = one_made().await;
    let (events, tasks) = (count(&schema, "events").await, count(&schema, "tasks").await);
    // Its operation's row cannot be written (the id is taken): its events
    // and its task, sent in the same statement, must not be either.
    let mut again = new_op(&wf, None, None);
    again.op.id = first.op.id.clone();

    assert!(store.accept(again).await.is_err(), "the id is taken");

    assert_eq!((count(&schema, "events").await, count(&schema, "tasks").await), (events, tasks));
    assert_eq!(count(&schema, "operations").await, 1);
}

#[tokio::test]
async fn a_transition_of_an_operation_gone_from_the_store_leaves_the_task_it_was_to_consume() {
    let (schema, store, wf, made) = one_made().await;
    let task = made.tasks.iter().find(|t| t.owned).expect("a task held by the node that made it").clone();
    let mut c = schema.options().connect().await.unwrap();
    sqlx::query("DELETE FROM operations WHERE id = $1").bind(made.op.id.to_string()).execute(&mut c).await.unwrap();

    let late = contract::apply(&*store, &wf, &made.op.id, Some(task.id), herald_core::Command::Discard).await;

    assert!(matches!(late, herald_store::TransitionResult::Missing), "{late:?}");
    assert!(store.finish_task(task.id).await.unwrap(), "the task is still there, and still this node's");
}

#[tokio::test]
async fn new_tasks_on_two_nodes_at_once_get_ids_no_other_task_has() {
    let (schema, a, b) = two_nodes(chrono::Duration::minutes(10)).await;
    let wf = workflow("w", "", "");
    let mut accepts = tokio::task::JoinSet::new();
    for i in 0..150 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let new = new_op(&wf, None, None);
        accepts.spawn(async move { (i % 2, create(&*node, new).await) });
    }
    let made = accepts.join_all().await;

    let mut ids: Vec<i64> = made.iter().flat_map(|(_, m)| m.tasks.iter().map(|t| t.id.row)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 150, "one task each, none sharing an id");
    assert_eq!(count(&schema, "tasks").await, 150);
    for (node, m) in &made {
        let (mine, theirs) = if *node == 0 { (&a, &b) } else { (&b, &a) };
        let task = &m.tasks[0];
        assert!(!theirs.finish_task(task.id).await.unwrap(), "not the other node's");
        assert!(mine.finish_task(task.id).await.unwrap(), "the id handed back is the row's, at its epoch");
    }
    assert_eq!(count(&schema, "tasks").await, 0);
}

#[tokio::test]
async fn an_instance_registered_through_one_node_is_listed_and_deleted_for_every_node() {
    let (_schema, a, b) = two_nodes(chrono::Duration::minutes(10)).await;
    let now = chrono::Utc::now();
    let instance = contract::registered("a-1", "http://10.0.0.1:8080", now, chrono::Duration::seconds(30));

    assert_eq!(a.put_instance(&instance).await.unwrap(), herald_store::Registered::Created);
    let seen = b.instances(now).await.unwrap();
    assert_eq!(
        seen.iter().map(|i| (i.id.as_str(), i.url.as_str())).collect::<Vec<_>>(),
        [("a-1", instance.url.as_str())]
    );
    let beat = contract::registered("a-1", "http://10.0.0.1:8080", now, chrono::Duration::seconds(60));
    assert_eq!(b.put_instance(&beat).await.unwrap(), herald_store::Registered::Renewed, "either node renews it");

    assert!(b.delete_instance("shop", "a-1").await.unwrap());
    assert!(a.instances(now).await.unwrap().is_empty(), "gone for the node that registered it too");
}

#[tokio::test]
async fn accepts_and_transitions_asked_for_at_once_share_commits() {
    let schema = TestSchema::new().await;
    let store = schema.store(contract::node()).await;
    let wf = workflow("w", "", "");
    let before = store.group_commits();

    let mut accepts = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (store, new) = (store.clone(), new_op(&wf, None, None));
        accepts.spawn(async move { create(&*store, new).await });
    }
    let made = accepts.join_all().await;
    let mut answers = tokio::task::JoinSet::new();
    for m in &made {
        let (store, wf, id) = (store.clone(), wf.clone(), m.op.id.clone());
        let call = m.tasks.iter().find(|t| t.owned).expect("a held task").id;
        let done = contract::answer(1, herald_core::machine::Outcome::Done(serde_json::json!({})));
        answers.spawn(async move { contract::applied(&*store, &wf, &id, Some(call), done).await });
    }
    let ended = answers.join_all().await;

    assert!(ended.iter().all(|a| a.op.is_final()));
    assert_eq!(count(&schema, "operations").await, 200);
    assert_eq!(count(&schema, "tasks").await, 0, "every task consumed once");
    let after = store.group_commits();
    let (batches, jobs) = (after.batches - before.batches, after.jobs - before.jobs);
    assert_eq!(jobs, 400, "every accept and transition ran in a batch");
    assert!(batches < jobs, "some shared a commit: {jobs} in {batches} batches");
}

#[tokio::test]
async fn a_batch_lost_before_its_commit_runs_each_of_its_jobs_again_alone() {
    let (schema, store, wf, first) = one_made().await;
    // One accept in each round reuses a taken id: its row fails the
    // statement that writes every row of its batch. Rounds go on until
    // that happened in a batch shared with others at least once.
    let mut rounds: i64 = 0;
    while store.group_commits().again == 0 {
        rounds += 1;
        assert!(rounds <= 30, "the taken id never shared a batch: {:?}", store.group_commits());
        let mut accepts = tokio::task::JoinSet::new();
        for i in 0..40 {
            let mut new = new_op(&wf, None, None);
            if i == 20 {
                new.op.id = first.op.id.clone();
            }
            let store = store.clone();
            accepts.spawn(async move { (i, store.accept(new).await) });
        }
        for (i, answer) in accepts.join_all().await {
            match (i, answer) {
                (20, Err(_)) => {}
                (20, Ok(a)) => panic!("the taken id was accepted: {a:?}"),
                (_, Ok(Accepted::Created(_))) => {}
                (i, other) => panic!("accept {i}, its neighbour's id taken: {other:?}"),
            }
        }
        assert_eq!(count(&schema, "operations").await, 1 + 39 * rounds, "the 39 others, each once");
        assert_eq!(count(&schema, "tasks").await, count(&schema, "operations").await, "one task each");
    }
}

#[tokio::test]
async fn two_nodes_claiming_at_once_agree_on_every_seq_and_on_what_was_published() {
    use herald_broker::{Claimed, Ledger};
    use herald_store::{BrokerLedger, contract::ledger};

    let (_schema, a, b) = two_nodes(chrono::Duration::minutes(10)).await;
    let (la, lb): (Arc<dyn Ledger>, Arc<dyn Ledger>) = (Arc::new(BrokerLedger(a)), Arc::new(BrokerLedger(b)));
    let all = ledger::claimed_at_once(vec![la.clone(), lb.clone(), la.clone(), lb.clone()], 25).await;
    assert_eq!(all, (1..=200).collect::<Vec<u64>>(), "every seq once, none skipped, across both nodes");

    let sent = ledger::published(&*la, "p", "t", &["e1"], Duration::from_secs(60)).await;
    let again = lb.claim("p", "t", &[ledger::claim("e1")]).await.unwrap();
    assert_eq!(
        again,
        [Claimed::Duplicate(match sent[0] {
            Claimed::New(s) | Claimed::Duplicate(s) => s,
        })]
    );
    la.put_definition("p", "s", "{}").await.unwrap();
    assert_eq!(lb.definition("p", "s").await.unwrap().as_deref(), Some("{}"), "seen by the other at once");
}
