//! What only herald processes of their own can show, for the brokers on
//! servers of their own: a consumer process SIGKILLed mid-batch, and the
//! broker's server restarted under load. Each backend's test binary keeps
//! its harness (connecting, running a server of its own) and calls these.
//!
//! The consumer-kill test re-executes the backend's test binary: it must
//! have a test named [`CHILD_TEST`] that does nothing without [`ChildEnv`]
//! and otherwise connects to the prefix and runs [`consume`]:
//!
//! ```ignore
//! #[tokio::test]
//! async fn consumer_child() {
//!     let Some(env) = process::ChildEnv::read() else { return };
//!     let broker = connect(&env.prefix, env.store.as_deref()).await;
//!     process::consume(&broker, &env.log, Duration::ZERO).await;
//! }
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;

use super::{event, subscription};
use crate::Broker;

/// The test in the backend's binary that is the consumer process.
pub const CHILD_TEST: &str = "consumer_child";

/// The child's log file, one line per event handled.
const LOG_VAR: &str = "HERALD_TEST_LOG";
/// The prefix the child consumes on.
const PREFIX_VAR: &str = "HERALD_TEST_PREFIX";
/// herald's store, for a backend that keeps part of a topic there.
const STORE_VAR: &str = "HERALD_TEST_STORE";

const KEYS: [&str; 4] = ["a", "b", "c", "d"];

/// What the consumer process is told by its parent.
pub struct ChildEnv {
    pub log: PathBuf,
    pub prefix: String,
    /// The URL of herald's store the parent's broker uses, if it gave one.
    pub store: Option<String>,
}

impl ChildEnv {
    /// `None` when this process is not a consumer child (the test then
    /// does nothing).
    pub fn read() -> Option<Self> {
        let (Ok(log), Ok(prefix)) = (std::env::var(LOG_VAR), std::env::var(PREFIX_VAR)) else {
            return None;
        };
        Some(ChildEnv { log: log.into(), prefix, store: std::env::var(STORE_VAR).ok() })
    }
}

/// The consumer: pulls batches of ten with a 1 s lease, writes each
/// event's id, key and attempt to its log, acknowledges it, and stops
/// after two quiet seconds. After an empty pull it waits `empty_pause`
/// (zero for a backend whose empty pull waits a moment itself).
pub async fn consume(broker: &dyn Broker, log: &Path, empty_pause: Duration) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    println!("consuming");
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let batch = broker.pull("work", 10, Duration::from_secs(1)).await.unwrap();
        if batch.is_empty() {
            if quiet_since.elapsed() > Duration::from_secs(2) {
                println!("drained");
                return;
            }
            if !empty_pause.is_zero() {
                tokio::time::sleep(empty_pause).await;
            }
            continue;
        }
        quiet_since = tokio::time::Instant::now();
        for m in batch {
            let key = m.event.ordering_key().unwrap_or("-");
            // One write per line, so a kill never leaves half of one.
            file.write_all(format!("{} {key} {}\n", m.event.id, m.attempt).as_bytes()).unwrap();
            tokio::time::sleep(Duration::from_millis(15)).await;
            broker.ack("work", &[m.ack_id]).await.unwrap();
        }
    }
}

fn child(log: &Path, prefix: &str, store: Option<&str>) -> Child {
    let log = log.to_str().unwrap();
    let mut env = vec![(LOG_VAR, log), (PREFIX_VAR, prefix)];
    env.extend(store.map(|store| (STORE_VAR, store)));
    child_test(CHILD_TEST, &env)
}

/// This test binary again, running test `test` alone with `env`: its
/// stdout piped (what it says), its stderr the parent's. `test` is marked
/// `#[ignore]`, so a normal run does not count the entry point as a test.
pub fn child_test(test: &str, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Reads the child's stdout until a line holding `marker` (blocking);
/// answers the line from the marker on (the test harness may print its
/// own words first on the same line).
pub fn wait_for_line(child: &mut Child, marker: &str) -> String {
    let mut reader = BufReader::new(child.stdout.as_mut().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the child ended before saying {marker:?}");
        if let Some(at) = line.find(marker) {
            return line[at..].trim().to_string();
        }
    }
}

/// A consumer child (started by `spawn` with its log file) SIGKILLed once
/// its log holds 25 lines, mid-batch; then a second one, run until it says
/// it drained everything and ends well. The consumers print "consuming"
/// when they start and "drained" when they stop.
pub async fn kill_mid_batch_then_drain(
    spawn: impl Fn(&Path) -> Child + Send + Sync + 'static,
    first_log: &Path,
    second_log: &Path,
) {
    let spawn = Arc::new(spawn);
    let (first_log, second_log) = (first_log.to_path_buf(), second_log.to_path_buf());
    let start = spawn.clone();
    tokio::task::spawn_blocking(move || {
        let mut first = start(&first_log);
        wait_for_line(&mut first, "consuming");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(&first_log).unwrap_or_default().lines().count() < 25 {
            assert!(std::time::Instant::now() < deadline, "the first consumer did not get going");
            std::thread::sleep(Duration::from_millis(5));
        }
        first.kill().unwrap(); // SIGKILL, mid-batch
        first.wait().unwrap();
    })
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || {
        let mut second = spawn(&second_log);
        wait_for_line(&mut second, "drained");
        assert!(second.wait().unwrap().success());
    })
    .await
    .unwrap();
}

/// (id, key, attempt) per line.
fn lines(path: &Path) -> Vec<(String, String, u32)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            let (id, key, attempt) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            (id.to_string(), key.to_string(), attempt.parse().unwrap())
        })
        .collect()
}

/// A consumer process SIGKILLed mid-batch: the events it held come back,
/// a second consumer handles everything the first did not acknowledge,
/// and each key's events are still handled in publish order across the
/// kill. `broker` is on `prefix`, which the children connect to as well
/// (with herald's store at `store`, if given).
pub async fn a_consumer_killed_mid_batch_loses_nothing_and_keys_keep_their_order(
    broker: &dyn Broker,
    prefix: &str,
    store: Option<&str>,
) {
    broker.put_subscription(&subscription("work", json!({"topic": "jobs", "lease": "1s"}))).await.unwrap();
    let mut published: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let events: Vec<_> = (0..60)
        .map(|i| {
            let key = (i % 3 != 0).then(|| KEYS[i % KEYS.len()]);
            let id = format!("job-{i:02}");
            published.entry(key.unwrap_or("-").to_string()).or_default().push(id.clone());
            event(&id, "Job", key)
        })
        .collect();
    broker.publish("jobs", events).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (first_log, second_log) = (dir.path().join("first.log"), dir.path().join("second.log"));

    let (prefix, store) = (prefix.to_string(), store.map(str::to_string));
    kill_mid_batch_then_drain(move |log| child(log, &prefix, store.as_deref()), &first_log, &second_log).await;

    let handled: Vec<(String, String, u32)> = lines(&first_log).into_iter().chain(lines(&second_log)).collect();
    let stats = broker.stats("work").await.unwrap();

    let mut ids: Vec<&str> = handled.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 60, "every event was handled at least once");
    assert!(handled.iter().any(|(_, _, attempt)| *attempt > 1), "what the killed consumer held came back");
    for (key, order) in published.iter().filter(|(k, _)| *k != "-") {
        let mut seen: Vec<&str> = handled.iter().filter(|(_, k, _)| k == key).map(|(id, _, _)| id.as_str()).collect();
        seen.dedup(); // the one the kill interrupted may be handled twice, one after the other
        assert_eq!(&seen, order, "key {key} handled in publish order across the kill");
    }
    assert_eq!((stats.pending, stats.in_flight), (0, 0));
}

const EVENTS: usize = 300;

/// A broker's server of the test's own, as the restart test drives it.
/// Both are called on a blocking-capable thread of a multi-thread runtime.
pub trait Engine {
    /// Returns once losing the server's process would not lose what the
    /// test set up (subscription `s` on topic `t`); at once by default.
    fn settle(&self) {}

    /// Stops the server, the backend's test says how, and starts it again
    /// on the same port and data; returns once it listens.
    fn restart(&mut self);
}

/// How patient the restart test is with a server.
#[derive(Clone, Copy)]
pub struct Pace {
    /// For all the publishes, the outage included.
    pub publish_within: Duration,
    /// For a third of them, before the restart.
    pub started_within: Duration,
    /// Between tries of a publish, or a pull, that failed.
    pub retry_after: Duration,
    /// After an empty pull (zero for a backend whose empty pull waits a
    /// moment itself).
    pub empty_pause: Duration,
}

/// The broker's server restarted under load: no publish that was
/// acknowledged is lost, publishes retried across the outage are stored
/// once, and deliveries resume. `broker` is connected to `engine`, on a
/// prefix with nothing in it.
pub async fn a_restart_under_load_loses_no_acknowledged_publish(
    broker: Arc<dyn Broker>,
    engine: &mut dyn Engine,
    pace: Pace,
) {
    let sub = json!({"topic": "t", "retry": {"attempts": 20}});
    broker.put_subscription(&subscription("s", sub)).await.unwrap();
    tokio::task::block_in_place(|| engine.settle());

    // One publisher, each event retried until the server acknowledges it.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let publisher = {
        let (broker, acked) = (broker.clone(), acked.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + pace.publish_within;
            for i in 0..EVENTS {
                let key = ["a", "b", "c"][i % 3];
                let e = event(&format!("e{i:03}"), "T", (i % 2 == 0).then_some(key));
                loop {
                    assert!(tokio::time::Instant::now() < deadline, "publishing never came back");
                    match broker.publish("t", vec![e.clone()]).await {
                        Ok(p) => {
                            acked.lock().unwrap().push((p[0].id.clone(), p[0].seq));
                            break;
                        }
                        Err(_) => tokio::time::sleep(pace.retry_after).await,
                    }
                }
            }
        })
    };
    let deadline = tokio::time::Instant::now() + pace.started_within;
    while acked.lock().unwrap().len() < EVENTS / 3 {
        assert!(tokio::time::Instant::now() < deadline, "publishing did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_restart = acked.lock().unwrap().len();
    tokio::task::block_in_place(|| engine.restart());
    publisher.await.unwrap();

    // Every acknowledged event comes out, whatever the outage cost.
    let acked: Vec<(String, u64)> = acked.lock().unwrap().clone();
    let mut delivered = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while delivered.len() < EVENTS {
        assert!(tokio::time::Instant::now() < deadline, "deliveries stopped at {} of {EVENTS}", delivered.len());
        let Ok(msgs) = broker.pull("s", 50, Duration::from_secs(30)).await else {
            tokio::time::sleep(pace.retry_after).await;
            continue;
        };
        let ids: Vec<String> = msgs.iter().map(|m| m.ack_id.clone()).collect();
        delivered.extend(msgs.into_iter().map(|m| m.event.id));
        if !ids.is_empty() {
            broker.ack("s", &ids).await.unwrap();
        } else if !pace.empty_pause.is_zero() {
            tokio::time::sleep(pace.empty_pause).await;
        }
    }

    assert!(at_restart < EVENTS, "the server went down while events were still being published");
    assert_eq!(acked.len(), EVENTS, "every event was acknowledged in the end");
    let stored: BTreeSet<u64> = acked.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(stored.len(), EVENTS, "a publish retried across the outage was stored once");
    let published: BTreeSet<String> = acked.into_iter().map(|(id, _)| id).collect();
    assert_eq!(delivered, published, "every acknowledged publish was delivered");
}
