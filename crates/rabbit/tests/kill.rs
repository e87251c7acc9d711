//! A consumer process SIGKILLed mid-batch on RabbitMQ: its connection
//! drops, the server returns what it held (counted in `x-delivery-count`),
//! a second consumer handles everything the first did not acknowledge
//! (taking over the keyed queues as their single active consumer), and
//! each key's events are still handled in publish order across the kill.
//! The consumers are processes of their own, so herald's store is a
//! PostgreSQL schema of the test's own, which they share.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    time::Duration,
};

use herald_broker::{Broker, contract};
use serde_json::json;

mod common;

const KEYS: [&str; 4] = ["a", "b", "c", "d"];

/// The consumer as a child process: pulls batches of ten with a 1 s lease
/// (an empty pull waits a moment for deliveries itself),
/// writes each event's id, key and attempt to its log, acknowledges it,
/// and stops after two quiet seconds.
#[tokio::test]
async fn consumer_child() {
    let (Ok(log), Ok(prefix), Ok(store)) = (
        std::env::var("HERALD_RABBIT_LOG"),
        std::env::var("HERALD_RABBIT_PREFIX"),
        std::env::var("HERALD_RABBIT_STORE"),
    ) else {
        return;
    };
    let broker = common::connect(&common::url(), &prefix, common::postgres(&store).await).await;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
    println!("consuming");
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let batch = broker.pull("work", 10, Duration::from_secs(1)).await.unwrap();
        if batch.is_empty() {
            if quiet_since.elapsed() > Duration::from_secs(2) {
                println!("drained");
                return;
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

fn child(env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["consumer_child", "--exact", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn wait_for_line(child: &mut Child, marker: &str) {
    let mut reader = BufReader::new(child.stdout.as_mut().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the child ended before saying {marker:?}");
        if line.contains(marker) {
            return;
        }
    }
}

/// (id, key, attempt) per line.
fn lines(path: &std::path::Path) -> Vec<(String, String, u32)> {
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

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing_and_keys_keep_their_order() {
    let owned = common::Prefix::on_postgres("hk").await;
    let (prefix, broker, store) = (owned.name.clone(), owned.connect().await, owned.store_url());
    broker.put_subscription(&contract::subscription("work", json!({"topic": "jobs", "lease": "1s"}))).await.unwrap();
    let mut published: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let events: Vec<_> = (0..60)
        .map(|i| {
            let key = (i % 3 != 0).then(|| KEYS[i % KEYS.len()]);
            let id = format!("job-{i:02}");
            published.entry(key.unwrap_or("-").to_string()).or_default().push(id.clone());
            contract::event(&id, "Job", key)
        })
        .collect();
    broker.publish("jobs", events).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (first_log, second_log) = (dir.path().join("first.log"), dir.path().join("second.log"));

    let env = [
        ("HERALD_RABBIT_LOG", first_log.to_str().unwrap()),
        ("HERALD_RABBIT_PREFIX", prefix.as_str()),
        ("HERALD_RABBIT_STORE", store.as_str()),
    ];
    let mut first = child(&env);
    let log = first_log.clone();
    tokio::task::spawn_blocking(move || {
        wait_for_line(&mut first, "consuming");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while lines(&log).len() < 25 {
            assert!(std::time::Instant::now() < deadline, "the first consumer did not get going");
            std::thread::sleep(Duration::from_millis(5));
        }
        first.kill().unwrap(); // SIGKILL, mid-batch
        first.wait().unwrap();
    })
    .await
    .unwrap();
    let env = [
        ("HERALD_RABBIT_LOG", second_log.to_str().unwrap()),
        ("HERALD_RABBIT_PREFIX", prefix.as_str()),
        ("HERALD_RABBIT_STORE", store.as_str()),
    ];
    let mut second = child(&env);
    tokio::task::spawn_blocking(move || {
        wait_for_line(&mut second, "drained");
        assert!(second.wait().unwrap().success());
    })
    .await
    .unwrap();

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
