//! A rolling restart of three nodes behind nginx, run with the
//! configuration docs/SCALING.md gives (`docs/nginx/herald.conf`, its
//! addresses rewritten), while load runs through the API and the gateway:
//! no accepted operation is lost, and no client request answers 5xx.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use herald_store::contract::postgres::TestSchema;
use herald_testkit::{StepService, eventually, free_port, nginx::Nginx};
use serde_json::{Value, json};

use crate::{all_succeeded_once, harness::Cluster, spec};

/// The documented addresses of the nodes and of nginx itself.
const NODES: [&str; 3] = ["127.0.0.1:7081", "127.0.0.1:7082", "127.0.0.1:7083"];
const LISTEN: &str = "listen 127.0.0.1:8080;";
/// How long the documented nginx skips a node that failed: a node back
/// from a restart takes requests again only after it.
const FAIL_TIMEOUT: &str = "fail_timeout=2s;";
const SKIPPED: Duration = Duration::from_secs(2);

/// The documented configuration, pointed at these nodes and this address.
fn nginx_conf(nodes: &[u16], listen: &str) -> String {
    let documented = include_str!("../../../../docs/nginx/herald.conf");
    assert!(documented.contains(LISTEN), "the documented nginx listens where this test expects");
    assert!(documented.contains(FAIL_TIMEOUT), "the documented nginx skips a failed node for {SKIPPED:?}");
    let mut conf = documented.replace(LISTEN, &format!("listen {listen};"));
    for (at, port) in NODES.iter().zip(nodes) {
        assert!(conf.contains(at), "the documented upstream has {at}");
        conf = conf.replace(at, &format!("127.0.0.1:{port}"));
    }
    conf
}

/// What the clients saw: every request's answer, and the operations accepted.
#[derive(Default)]
struct Seen {
    /// (what, status); 0 when no answer came at all.
    answers: Vec<(&'static str, u16)>,
    accepted: BTreeSet<String>,
}

/// One client: starts an operation (with an idempotency key, as
/// docs/SCALING.md asks), reads it, and calls a service through the
/// gateway, until told to stop.
async fn client(http: reqwest::Client, base: String, who: usize, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let start = http
            .post(format!("{base}/v1/workflows/order/operations"))
            .header("idempotency-key", format!("roll-{who}-{n}"))
            .json(&json!({ "n": n }))
            .send()
            .await;
        let (status, id) = match start {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or_default();
                (status, body["id"].as_str().map(str::to_string))
            }
            Err(_) => (0, None),
        };
        let read = match &id {
            Some(id) => http.get(format!("{base}/v1/operations/{id}")).send().await,
            None => http.get(format!("{base}/v1/workflows")).send().await,
        };
        let gateway = http.get(format!("{base}/gw/edge/ping")).send().await;
        let code = |r: reqwest::Result<reqwest::Response>| r.map_or(0, |r| r.status().as_u16());
        let mut s = seen.lock().unwrap();
        s.answers.extend([("start", status), ("read", code(read)), ("gateway", code(gateway))]);
        if status == 202 {
            s.accepted.extend(id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_nginx_loses_no_operation_and_answers_no_5xx() {
    let schema = TestSchema::new().await;
    let svc = StepService::start().await;
    // The gateway's upstream, apart from the steps' (whose calls are counted).
    let upstream = StepService::start().await;
    let edge = format!("[services.edge]\ninstances = [\"{}\"]\ngateway = \"public\"\n", upstream.url);
    let mut c = Cluster::start(spec(3, schema.url(), &svc).toml(&edge)).await;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    let _nginx = Nginx::start(dir.path(), &nginx_conf(&ports, &listen), &listen)
        .unwrap()
        .expect("nginx is installed (apt-get install nginx): the rolling restart runs behind it");

    let (seen, stop) = (Arc::new(Mutex::new(Seen::default())), Arc::new(AtomicBool::new(false)));
    let clients: Vec<_> = (0..4)
        .map(|who| tokio::spawn(client(c.http.clone(), format!("http://{listen}"), who, seen.clone(), stop.clone())))
        .collect();
    let accepted = || seen.lock().unwrap().accepted.len();
    let more = |n: usize| {
        let accepted = &accepted;
        eventually("load is running", Duration::from_secs(30), move || {
            std::future::ready((accepted() >= n).then_some(()))
        })
    };
    more(20).await;
    for i in 0..3 {
        let stopped = c.terminate(i, Duration::from_secs(30)).await;
        assert!(stopped.success(), "node {i} stops cleanly on SIGTERM: {stopped:?}");
        more(accepted() + 10).await;
        c.restart(i).await;
        // As docs/SCALING.md says: the next node goes once nginx takes the
        // restarted one back (its `fail_timeout` after it last failed
        // there, which was at the latest when it came back up), and load
        // went on meanwhile. Stopping the next one sooner leaves nginx with
        // a single node it counts as live, and one refusal of that node's
        // means no node at all.
        let back = tokio::time::Instant::now() + SKIPPED;
        more(accepted() + 20).await;
        tokio::time::sleep_until(back).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let failed: Vec<_> = seen.answers.iter().filter(|(_, status)| *status == 0 || *status >= 500).collect();
    eprintln!("{} requests, {} operations accepted", seen.answers.len(), seen.accepted.len());
    let first: Vec<_> = failed.iter().take(20).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed or answered 5xx, first: {first:?}",
        failed.len(),
        seen.answers.len()
    );
    let ids: Vec<String> = seen.accepted.into_iter().collect();
    all_succeeded_once(&c, 0, &ids, &svc, Duration::from_secs(90)).await;
    assert!(!upstream.calls("/ping").is_empty(), "the gateway's requests reached the upstream");
}
