//! A full disk under the embedded store: herald's data on a small tmpfs
//! that really fills up.

use std::time::Duration;

use herald_testkit::{eventually, tmpfs::Tmpfs};
use serde_json::{Value, json};

use crate::helpers::*;

sqlite_only! {
    /// SQLite writes its own files: the disk under them is the one that
    /// fills.
    #[tokio::test]
    async fn a_full_disk_refuses_new_work_with_503_keeps_what_was_accepted_and_recovers_by_itself() {
        let Some(disk) = Tmpfs::mount(16 << 20) else { return };
        let svc = StepService::start().await;
        let files = [sequential("order", &["a", "b"], "")];
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let app = spawn_app_in(tempfile::tempdir_in(disk.path()).unwrap(), &files, &svc).await;
        let first = app.start_id("order", json!({"n": 0})).await;
        assert_eq!(app.wait_final(&first).await["status"], "succeeded");

        let filler = disk.fill();
        // Starts go on while the store finds room (pages it already has);
        // the first it cannot write is refused, and nothing is half-kept.
        let mut accepted = vec![first];
        let mut refused = None;
        for n in 1..5000 {
            let resp = app.start("order", json!({"n": n, "pad": "x".repeat(4000)})).await;
            match resp.status().as_u16() {
                202 => accepted.push(resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()),
                503 => {
                    refused = Some(resp);
                    break;
                }
                other => panic!("a start on a full disk answered {other}: {}", resp.text().await.unwrap()),
            }
        }
        let refused = refused.expect("the full disk was felt within 5,000 starts");
        assert_eq!(refused.headers()["content-type"], "application/problem+json");
        assert!(refused.headers().contains_key("retry-after"), "it says when to try again");
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["type"], "urn:herald:problem:store-unavailable", "{problem}");
        for id in &accepted {
            let got = app.http.get(app.url(&format!("/v1/operations/{id}"))).send().await.unwrap();
            assert_eq!(got.status(), 200, "{id}, accepted before the disk filled, is still there");
        }

        // Space comes back: herald takes work again by itself, and every
        // operation it accepted ends.
        std::fs::remove_file(filler).unwrap();
        let again = || async {
            let resp = app.start("order", json!({"n": "again"})).await;
            if resp.status() != 202 {
                return None;
            }
            Some(resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string())
        };
        accepted.push(eventually("a start accepted once space returned", Duration::from_secs(30), again).await);
        for id in &accepted {
            let op = app.wait_for(id, Duration::from_secs(60), |op| op["status"] == "succeeded").await;
            assert_eq!(op["timeline"].as_array().unwrap().iter().filter(|e| e["type"] == "step_succeeded").count(), 2);
        }

        // And the data holds across a restart.
        let data = app.stop().await;
        let app = spawn_app_in(data, &files, &svc).await;
        for id in &accepted {
            assert_eq!(app.get(id).await["status"], "succeeded", "{id}, after a restart");
        }
    }
}
