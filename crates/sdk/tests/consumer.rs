//! At-least-once delivery to a consumer process that is killed mid-batch:
//! the events it held come back when their leases end, and a second
//! consumer handles everything the first did not acknowledge.

mod common;

use std::{io::Write, time::Duration};

use common::{child, event, herald, kill_mid_batch_then_drain};
use herald_sdk::Client;
use serde_json::json;

/// The consumer as a child process: pulls batches of ten, writes each
/// event's id and attempt to its log, acknowledges it, and stops after a
/// quiet spell.
#[tokio::test]
#[ignore = "a child process's entry point: run, with `--ignored`, by the test that spawns it"]
async fn consumer_child() {
    let Ok(log) = std::env::var("HERALD_SDK_LOG") else { return };
    let client = Client::new(std::env::var("HERALD_SDK_URL").unwrap());
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
    println!("consuming");
    loop {
        let batch = client.pull("work", 10, Duration::from_secs(3)).await.unwrap();
        if batch.is_empty() {
            println!("drained");
            return;
        }
        for m in batch {
            // One write per line: `writeln!` may write the pieces apart,
            // and a kill between them would leave half a line.
            file.write_all(format!("{} {}\n", m.event.id, m.attempt).as_bytes()).unwrap();
            tokio::time::sleep(Duration::from_millis(15)).await;
            client.ack("work", &[m.ack_id]).await.unwrap();
        }
    }
}

fn lines(path: &std::path::Path) -> Vec<(String, u32)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (id, attempt) = l.split_once(' ').unwrap();
            (id.to_string(), attempt.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing() {
    let h = herald(&[], &[]).await;
    let client = Client::new(&h.base);
    let put = reqwest::Client::new()
        .put(format!("{}/v1/subscriptions/work", h.base))
        .json(&json!({"topic": "jobs", "lease": "1s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let events: Vec<_> = (0..60).map(|i| event(&format!("job-{i:02}"), "Job")).collect();
    client.publish_batch("jobs", &events).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (first_log, second_log) = (dir.path().join("first.log"), dir.path().join("second.log"));

    let base = h.base.clone();
    let spawn = move |log: &std::path::Path| {
        child("consumer_child", &[("HERALD_SDK_LOG", log.to_str().unwrap()), ("HERALD_SDK_URL", base.as_str())])
    };
    kill_mid_batch_then_drain(spawn, &first_log, &second_log).await;

    let (first, second) = (lines(&first_log), lines(&second_log));
    let mut handled: Vec<&str> = first.iter().chain(&second).map(|(id, _)| id.as_str()).collect();
    handled.sort();
    handled.dedup();
    assert_eq!(handled.len(), 60, "every event was handled at least once");
    assert!(
        second.iter().any(|(_, attempt)| *attempt > 1),
        "the events the killed consumer held came back when their leases ended"
    );
    let stats: serde_json::Value =
        reqwest::get(format!("{}/v1/subscriptions/work", h.base)).await.unwrap().json().await.unwrap();
    assert_eq!((stats["stats"]["pending"].as_u64(), stats["stats"]["in_flight"].as_u64()), (Some(0), Some(0)));
}
