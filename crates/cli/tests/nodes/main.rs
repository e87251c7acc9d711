//! Several real `herald serve` processes on one PostgreSQL database, and
//! the faults a deployment of them meets: a node frozen past its lease, its
//! database connections cut, the database restarted, the database missing
//! at start-up. Each test waits on conditions with deadlines; one that
//! needs PostgreSQL and cannot reach it fails, saying what to start.

mod demo;
mod harness;
mod loss;
mod pg;
mod rolling;

use std::{collections::HashSet, sync::Arc, time::Duration};

use harness::{Cluster, Spec};
use herald_store::contract::postgres::TestSchema;
use herald_testkit::{
    Reply, StepService, eventually,
    process::{Serve, serve},
    until, workflow,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

const STEPS: [&str; 3] = ["a", "b", "c"];

/// Leases short enough to run out within a test; a step's timeout must be
/// at least 10 s shorter (herald checks at start-up).
const ENGINE: &str = "[engine]\nlease = \"12s\"\npoll_interval = \"100ms\"\n";

/// Nodes on `store` running `order` (steps a, b, c on `svc`).
fn spec(nodes: usize, store: String, svc: &StepService) -> Spec {
    let extra = "timeout = \"2s\"\nretry = { attempts = 50, initial = \"50ms\", max = \"500ms\" }\n";
    let order = workflow::named("order", STEPS.map(|s| workflow::call(s, "svc", &format!("/{s}"), extra)));
    Spec::new(nodes, store).workflow("order.toml", order).service("svc", &svc.url).toml(ENGINE)
}

/// Starts an `order` on node `i`: its id when it was accepted (202).
async fn start_on(c: &Cluster, i: usize, n: usize) -> Option<String> {
    let r = c.http.post(c.node(i).url("/v1/workflows/order/operations")).json(&json!({ "n": n })).send().await.ok()?;
    if r.status() != 202 {
        return None;
    }
    Some(r.json::<Value>().await.ok()?["id"].as_str()?.to_string())
}

async fn operation(c: &Cluster, i: usize, id: &str) -> Option<Value> {
    let r = c.http.get(c.node(i).url(&format!("/v1/operations/{id}"))).send().await.ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// How many events of `kind` for `step` the operation's timeline holds.
fn count(op: &Value, kind: &str, step: &str) -> usize {
    op["timeline"].as_array().unwrap().iter().filter(|e| e["type"] == kind && e["step"] == step).count()
}

/// Every operation in `ids` succeeded, as node `i` tells, each step's
/// result recorded once; and the step service saw each step's key, and only
/// step keys. A step may be called again with its key (at least once: its
/// answer may have been lost with a connection), so a service applies each
/// key once; an accept whose answer was lost may have committed, and its
/// operation's keys are counted, not refused.
async fn all_succeeded_once(c: &Cluster, i: usize, ids: &[String], svc: &StepService, within: Duration) {
    let mut left: Vec<&String> = ids.iter().collect();
    eventually("every accepted operation ended", within, async || {
        let mut still = Vec::new();
        for id in std::mem::take(&mut left) {
            match operation(c, i, id).await {
                Some(op) if op["status"] == "succeeded" => {}
                Some(op) if op["status"] == "failed" || op["status"] == "cancelled" => panic!("{id} ended: {op}"),
                _ => still.push(id),
            }
        }
        left = still;
        if left.is_empty() { Ok(()) } else { Err(format!("{} of {} still going", left.len(), ids.len())) }
    })
    .await;
    for id in ids {
        let op = operation(c, i, id).await.unwrap();
        for s in STEPS {
            assert_eq!(count(&op, "step_succeeded", s), 1, "{id}/{s} recorded once: {op}");
        }
    }
    let ledger = svc.calls_per_key();
    let accepted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    for id in ids {
        for s in STEPS {
            assert!(ledger.contains_key(&format!("{id}/{s}")), "{id}/{s} reached the service");
        }
    }
    for key in ledger.keys() {
        assert!(STEPS.iter().any(|s| key.ends_with(&format!("/{s}"))), "a step's key: {key}");
    }
    let repeated = ledger.values().filter(|n| **n > 1).count();
    let others = ledger.keys().filter(|k| !accepted.contains(k.split('/').next().unwrap())).count();
    eprintln!(
        "{} keys, {repeated} called more than once (same key), {others} of operations not answered 202",
        ledger.len()
    );
}

/// Node A takes a step call and is frozen (SIGSTOP) while the service holds
/// it; its lease runs out, node B claims the task and finishes the
/// operation. A wakes (SIGCONT) and its call ends: its write is refused,
/// and the step's result is on the timeline once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_frozen_past_its_lease_has_its_late_write_refused() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    let gate = Arc::new(Semaphore::new(0));
    svc.then("/a", vec![Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({ "by": "a" }))))]);
    let mut c = Cluster::start(spec(2, schema.url(), &svc)).await;

    let id = start_on(&c, 0, 1).await.expect("accepted");
    // The accepting node holds the new task, and calls at once.
    eventually("node A calls step a", Duration::from_secs(10), || {
        std::future::ready((svc.calls("/a").len() == 1).then_some(()))
    })
    .await;
    c.pause(0);
    let done =
        eventually("node B takes the task once A's lease ran out, and finishes", Duration::from_secs(40), || {
            let c = &c;
            let id = &id;
            async move { operation(c, 1, id).await.filter(|op| op["status"] == "succeeded") }
        })
        .await;
    c.resume(0);
    gate.add_permits(1);
    let refused = c.logged(0, "a late write was refused", Duration::from_secs(20)).await;
    assert!(refused.is_some(), "node A tried its write once awake, and it was refused; its log:\n{}", c.node(0).log());

    let after = operation(&c, 0, &id).await.expect("the operation, from node A");
    assert_eq!(after["status"], "succeeded");
    assert_eq!(after["timeline"], done["timeline"], "A's late write added nothing");
    for s in STEPS {
        assert_eq!(count(&after, "step_succeeded", s), 1, "{s} recorded once: {after}");
    }
    assert_eq!(count(&after, "step_failed", "a"), 0, "A's attempt left no trace: {after}");
    let ledger = svc.calls_per_key();
    assert_eq!(ledger[&format!("{id}/a")], 2, "A's call and B's, under one idempotency key");
    assert_eq!((ledger[&format!("{id}/b")], ledger[&format!("{id}/c")]), (1, 1));
    let stopped = c.terminate(0, Duration::from_secs(30)).await;
    assert!(stopped.success(), "node A, woken, still stops cleanly on SIGTERM: {stopped:?}");
}

/// Every connection herald's two nodes hold is ended mid-run: every
/// operation that was accepted still ends, each step's result once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_every_database_connection_mid_run_loses_no_accepted_operation() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    for s in STEPS {
        svc.on(&format!("/{s}"), Reply::Sleep(Duration::from_millis(5), Box::new(Reply::Json(json!({})))));
    }
    let mut c = Cluster::start(spec(2, schema.url(), &svc)).await;

    let starts = futures::future::join_all((0..200).map(|n| start_on(&c, n % 2, n)));
    let cut = async {
        eventually("steps under way", Duration::from_secs(30), || {
            std::future::ready((svc.all_calls().len() >= 100).then_some(()))
        })
        .await;
        pg::terminate_connections(&schema, &c.pids()).await
    };
    let (ids, ended) = tokio::join!(starts, cut);
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    assert!(ended > 0, "herald's connections were found and ended");
    eprintln!("ended {ended} connections; {} of 200 operations accepted", ids.len());
    assert!(ids.len() >= 100, "most operations were accepted");
    // And one node dies outright while the other recovers: its tasks wait
    // out their leases, then either node takes them.
    c.kill(0);
    c.restart(0).await;

    all_succeeded_once(&c, 1, &ids, &svc, Duration::from_secs(60)).await;
}

/// The database itself is stopped mid-run and started again (a private
/// server, not the one other tests share): the nodes' `/readyz` goes
/// false and back, and every accepted operation ends, each step once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_no_accepted_operation() {
    let mut db = pg::PrivatePostgres::start().await;
    let svc = StepService::start().await;
    for s in STEPS {
        svc.on(&format!("/{s}"), Reply::Sleep(Duration::from_millis(5), Box::new(Reply::Json(json!({})))));
    }
    let c = Cluster::start(spec(2, db.url(), &svc)).await;

    let ids: Vec<String> =
        futures::future::join_all((0..100).map(|n| start_on(&c, n % 2, n))).await.into_iter().flatten().collect();
    assert_eq!(ids.len(), 100, "all accepted while the database runs");
    eventually("steps under way", Duration::from_secs(30), || {
        std::future::ready((svc.all_calls().len() >= 60).then_some(()))
    })
    .await;
    db.stop();
    let readyz = |i: usize| {
        let (http, url) = (c.http.clone(), c.node(i).url("/readyz"));
        async move { http.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    for i in 0..2 {
        let down = until(Duration::from_secs(30), || async move { (readyz(i).await != 200).then_some(()) }).await;
        assert!(down.is_some(), "node {i} is not ready while its database is down");
        // And says so soon enough for a load balancer's probe.
        let asked = std::time::Instant::now();
        assert_eq!(readyz(i).await, 503, "node {i}, database down");
        assert!(asked.elapsed() < Duration::from_secs(4), "node {i}'s /readyz took {:?}", asked.elapsed());
    }
    db.resume().await;
    for i in 0..2 {
        c.wait_ready(i).await;
    }

    all_succeeded_once(&c, 0, &ids, &svc, Duration::from_secs(60)).await;
    assert!(db.log().contains("fast shutdown"), "the database really stopped");
}

/// `herald serve` on a database it cannot use exits at once, saying what
/// to start or fix, and never prints the URL's password.
#[tokio::test]
async fn start_up_on_an_unreachable_or_missing_database_says_what_to_fix() {
    let closed = herald_testkit::free_port();
    let unreachable = serve_fails(&format!("postgres://u:s3cret@127.0.0.1:{closed}/test")).await;
    assert!(unreachable.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{closed}")), "{unreachable}");
    assert!(unreachable.contains("is it running"), "{unreachable}");
    assert!(!unreachable.contains("s3cret"), "{unreachable}");

    // The shared server (this fails, saying what to start, without one),
    // asked for a database it does not have.
    let server = TestSchema::new().await.options();
    let (host, port) = (server.get_host(), server.get_port());
    let db = format!("herald_missing_{:08x}", std::process::id());
    let missing = serve_fails(&format!("postgres://postgres:s3cret@{host}:{port}/{db}")).await;
    assert!(missing.contains(&format!("no database `{db}`")), "{missing}");
    assert!(!missing.contains("s3cret"), "{missing}");
}

/// Runs `herald serve --store <store>`, which must fail within 20 s: what
/// it printed (stdout and stderr).
async fn serve_fails(store: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(env!("CARGO_BIN_EXE_herald"), Serve::Store { store, data_dir: dir.path() })
        .current_dir(dir.path())
        .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    let exited = until(Duration::from_secs(20), || std::future::ready(child.try_wait().unwrap())).await;
    let Some(status) = exited else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("herald serve --store on a database it cannot use did not exit within 20 s");
    };
    let printed = ["out", "err"].map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap()).concat();
    assert!(!status.success(), "herald exits non-zero: {printed}");
    printed
}
