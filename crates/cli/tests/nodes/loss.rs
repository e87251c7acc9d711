//! Node loss: three nodes run the demo's two stories (orders and account
//! deletions) against the demo's services, 2,000 operations started
//! round-robin, and one node is killed (SIGKILL) mid-run, later a second.
//! Every operation ends; each step's idempotency key took effect once at
//! the services (`/applied`); and watchers on the surviving node saw every
//! event of operations the other nodes advanced, in order, once.

use std::{collections::BTreeMap, time::Duration};

use futures::StreamExt;
use herald_demo::smtp::SmtpSink;
use herald_store::contract::postgres::TestSchema;
use herald_testkit::eventually;
use serde_json::{Value, json};

use crate::harness::{Cluster, Spec};

const OPERATIONS: usize = 2000;
/// Operations followed live on the surviving node.
const WATCHED: usize = 60;
/// The shop's tea.
const STOCK: i64 = 10_000;
/// The survivor.
const LAST: usize = 2;

/// The demo's workflows, services, subscriptions and an SMTP sink, with
/// leases short enough for a test to wait out.
fn spec(store: String, demo: &herald_demo::Demo, smtp: u16) -> Spec {
    let mut spec = Spec::new(3, store);
    for (file, text) in herald_demo::workflows() {
        spec = spec.workflow(file, text);
    }
    for (name, url) in demo.services() {
        spec = spec.service(&name, &url);
    }
    let mut extra = format!(
        "[engine]\nlease = \"40s\"\npoll_interval = \"200ms\"\n\
         [email]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\nfrom = \"herald <noreply@herald.test>\"\n"
    );
    for (name, sub) in herald_demo::subscriptions() {
        extra.push_str(&format!(
            "[subscriptions.{name}]\ntopic = \"{}\"\npush = {{ service = \"{}\", path = \"{}\" }}\n",
            sub["topic"].as_str().unwrap(),
            sub["push"]["service"].as_str().unwrap(),
            sub["push"]["path"].as_str().unwrap()
        ));
    }
    spec.toml(&extra)
}

/// The card the demo's payment always declines.
const DECLINED: &str = "4000000000000002";

/// The `n`th operation: orders and deletions in turn, each of its own
/// customer or account (so none waits on another's concurrency key). One
/// order in four pays with a declined card, so its reserved tea is put
/// back: compensation runs across the nodes' loss too.
fn operation(n: usize) -> (&'static str, Value) {
    if n.is_multiple_of(2) {
        let card = if n.is_multiple_of(8) { DECLINED } else { "4242424242424242" };
        ("place-order", json!({ "customer": format!("c{n}"), "items": [{ "sku": "tea", "qty": 1 }], "card": card }))
    } else {
        ("delete-account", json!({ "user_id": format!("u{n}"), "email": format!("u{n}@example.com") }))
    }
}

/// Starts operation `n` on the first live node from `n`'s turn: its id
/// and the node that accepted it.
async fn start(c: &Cluster, live: &[usize], n: usize) -> (String, usize) {
    let (workflow, input) = operation(n);
    for k in 0..live.len() {
        let i = live[(n + k) % live.len()];
        let url = c.node(i).url(&format!("/v1/workflows/{workflow}/operations"));
        let Ok(r) = c.http.post(url).header("idempotency-key", format!("loss-{n}")).json(&input).send().await else {
            continue;
        };
        if r.status() == 202 {
            let body: Value = r.json().await.unwrap();
            return (body["id"].as_str().unwrap().to_string(), i);
        }
    }
    panic!("no live node accepted operation {n}");
}

/// Follows an operation's events on node `i` until its final one.
async fn watch(http: reqwest::Client, url: String) -> Vec<Value> {
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let (mut buf, mut events) = (String::new(), Vec::new());
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(120), body.next()).await.expect("an event in time");
        let Some(chunk) = chunk else { return events };
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                let e: Value = serde_json::from_str(data).unwrap();
                let last = matches!(e["type"].as_str(), Some("succeeded" | "failed" | "cancelled"));
                events.push(e);
                if last {
                    return events;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_two_of_three_nodes_mid_run_loses_nothing_and_watchers_miss_nothing() {
    let schema = TestSchema::new().await;
    let dir = tempfile::tempdir().unwrap();
    let demo = herald_demo::start(Duration::ZERO, dir.path()).await.unwrap();
    // Enough tea for every order: each fails only for its card.
    herald_demo::restock(dir.path(), "tea", STOCK).await.unwrap();
    let smtp = SmtpSink::start(0).await.unwrap();
    let mut c = Cluster::start(spec(schema.url(), &demo, smtp.port)).await;
    demo.start_relay(&c.node(LAST).base);

    let mut live = vec![0, 1, 2];
    let mut ops: Vec<(String, usize)> = Vec::with_capacity(OPERATIONS);
    let mut watchers = Vec::new();
    for n in 0..OPERATIONS {
        if n == OPERATIONS / 3 {
            c.kill(0);
            live.retain(|i| *i != 0);
        }
        if n == 2 * OPERATIONS / 3 {
            c.kill(1);
            live.retain(|i| *i != 1);
        }
        let (id, on) = start(&c, &live, n).await;
        // Watch, on the survivor, operations another node accepted (and so
        // runs, until it dies).
        if on != LAST && watchers.len() < WATCHED && n.is_multiple_of(7) {
            let url = c.node(LAST).url(&format!("/v1/operations/{id}/events"));
            watchers.push((id.clone(), tokio::spawn(watch(c.http.clone(), url))));
        }
        ops.push((id, on));
    }
    assert!(watchers.len() >= WATCHED / 2, "{} watchers", watchers.len());

    // Every operation ends; the dead nodes' work waits out their leases.
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut finals = BTreeMap::new();
    for (id, _) in &ops {
        let url = c.node(LAST).url(&format!("/v1/operations/{id}"));
        let op: Value = eventually(&format!("{id} ends"), Duration::from_secs(120), || {
            let (http, url) = (c.http.clone(), url.clone());
            async move {
                let op: Value = http.get(url).send().await.ok()?.json().await.ok()?;
                matches!(op["status"].as_str(), Some("succeeded" | "failed" | "cancelled")).then_some(op)
            }
        })
        .await;
        *outcomes
            .entry(format!("{} {}", op["workflow"].as_str().unwrap(), op["status"].as_str().unwrap()))
            .or_default() += 1;
        finals.insert(id.clone(), op);
    }
    eprintln!("outcomes: {outcomes:?}");
    let deletions = outcomes.get("delete-account succeeded").copied().unwrap_or(0);
    assert_eq!(deletions, OPERATIONS / 2, "every deletion succeeded: {outcomes:?}");
    let declined = (0..OPERATIONS).step_by(8).count();
    let paid = OPERATIONS / 2 - declined;
    assert_eq!(outcomes.get("place-order succeeded"), Some(&paid), "every paid order succeeded: {outcomes:?}");
    assert_eq!(outcomes.get("place-order failed"), Some(&declined), "every declined one failed: {outcomes:?}");
    for n in (0..OPERATIONS).step_by(8) {
        let op = &finals[&ops[n].0];
        let reserve = op["steps"].as_array().unwrap().iter().find(|s| s["name"] == "reserve-inventory").unwrap();
        assert_eq!(reserve["status"], "compensated", "order {n}'s tea was put back: {op}");
    }
    // Each paid order took one tea, and each declined one put its tea back.
    let stock: Value =
        c.http.get(format!("{}/inventory/stock", demo.shop_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(stock["tea"], STOCK - paid as i64, "{stock}");

    // Each idempotency key took effect once at the services.
    for app in [&demo.shop_url, &demo.account_url] {
        let applied: BTreeMap<String, u32> =
            c.http.get(format!("{app}/applied")).send().await.unwrap().json().await.unwrap();
        let twice: Vec<_> = applied.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "keys applied more than once at {app}: {twice:?}");
        assert!(!applied.is_empty());
    }

    // The watchers on the survivor saw each of their operation's events, in
    // order, once: the timeline the store holds, up to the outcome (where a
    // stream ends; a deletion's erasure is told after it).
    for (id, watcher) in watchers {
        let seen = watcher.await.unwrap();
        let stored = finals[&id]["timeline"].as_array().unwrap().clone();
        let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{id}: in order, no gap, no repeat");
        assert_eq!(seen[..], stored[..seen.len()], "{id}: the watcher saw the stored timeline");
        assert_eq!(seen.last().unwrap()["type"], finals[&id]["status"], "{id}: up to its outcome");
    }
}
