//! The demo's account deletions under load. The audit store sheds load
//! ("busy", twice per deletion); herald slows down for it instead of
//! treating it as broken, and no deletion ends up waiting for a person.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use common::{DELETION, client, email_to, get, herald_with};
use herald_demo::smtp::SmtpSink;
use herald_testkit::eventually;
use serde_json::{Value, json};

/// The audit service's bulkhead in this test: under the 200 deletions.
const BULKHEAD: u32 = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_deletions_at_once_all_succeed_and_the_busy_audit_store_is_never_pressed_past_the_limit() {
    let http = client();
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Each step takes a moment, so the calls overlap.
    let demo = herald_demo::start(Duration::from_millis(20), dir.path()).await.expect("the demo starts");
    let sink = SmtpSink::start(0).await.expect("the SMTP sink starts");
    let (url, _herald) = herald_with(dir.path(), &demo, |c| {
        email_to(c, &sink);
        c.services.get_mut("audit").expect("the audit service").max_in_flight = Some(BULKHEAD);
    })
    .await;

    let starts = (0..200).map(|i| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let user = json!({ "user_id": format!("u{i}"), "email": format!("u{i}@example.com") });
            let r = http.post(format!("{url}/v1/workflows/{DELETION}/operations")).json(&user).send().await.unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        }
    });
    let ids: Vec<String> = futures_join(starts).await;

    // Watch herald's view of the audit service while the deletions run.
    let lowest = Arc::new(AtomicU32::new(BULKHEAD));
    let list = format!("{url}/v1/operations?workflow={DELETION}&status=succeeded&limit=200");
    eventually("every deletion succeeds", Duration::from_secs(120), || {
        let (http, list, services) = (http.clone(), list.clone(), format!("{url}/v1/services"));
        let lowest = lowest.clone();
        async move {
            let services = get(&http, services).await;
            let audit = services["items"].as_array().unwrap().iter().find(|s| s["name"] == "audit").unwrap().clone();
            assert!(audit["in_flight"].as_u64().unwrap() <= u64::from(BULKHEAD), "{audit}");
            lowest.fetch_min(audit["limit"].as_u64().unwrap() as u32, Ordering::Relaxed);
            let done = get(&http, list).await["items"].as_array().unwrap().len();
            (done == 200).then_some(())
        }
    })
    .await;

    let load = get(&http, format!("{}/audit/load", demo.account_url)).await;
    assert!(load["peak"].as_u64().unwrap() <= u64::from(BULKHEAD), "the audit store had more in flight: {load}");
    assert_eq!(load["calls"], 600, "busy twice, then done, for each deletion: no call more, none spent unsent");
    let lowest = lowest.load(Ordering::Relaxed);
    assert!(lowest < BULKHEAD, "herald lowered its limit for the busy store (lowest seen {lowest})");
    let letters = get(&http, format!("{url}/v1/dead-letters")).await;
    assert_eq!(letters["items"].as_array().unwrap().len(), 0, "nothing waits for a person: {letters}");
    let applied = get(&http, format!("{}/applied", demo.account_url)).await;
    for id in ids.iter().step_by(10) {
        let op = get(&http, format!("{url}/v1/operations/{id}")).await;
        assert_eq!(op["needs_attention"], false, "{op}");
        let audit = op["steps"].as_array().unwrap().iter().find(|s| s["name"] == "delete-audit-logs").unwrap();
        assert_eq!(audit["attempts"], 3, "three calls, three attempts: {audit}");
        assert_eq!(applied[format!("{id}/delete-audit-logs")], 1);
    }
}

async fn futures_join<F: std::future::Future<Output = String> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<String> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("a start"));
    }
    out
}
