//! Helpers for the messaging tests: publishing, subscriptions, what they deliver.

use std::time::Duration;

use serde_json::Value;

use super::helpers::{Call, StepService, TestApp, eventually};

/// Waits until `path` has had `n` calls (ten seconds at most); answers them.
pub async fn calls(svc: &StepService, path: &str, n: usize) -> Vec<Call> {
    eventually(&format!("{n} calls to {path}"), Duration::from_secs(10), async || {
        let calls = svc.calls(path);
        if calls.len() >= n { Ok(calls) } else { Err(format!("{} of {n}", calls.len())) }
    })
    .await
}

impl TestApp {
    pub async fn publish(&self, topic: &str, event: &Value) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/v1/topics/{topic}/events")))
            .header("content-type", "application/cloudevents+json")
            .body(event.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn put_subscription(&self, name: &str, body: Value) -> reqwest::Response {
        self.http.put(self.url(&format!("/v1/subscriptions/{name}"))).json(&body).send().await.unwrap()
    }

    /// `POST /v1/subscriptions/{name}:{verb}` with a JSON body.
    pub async fn consume(&self, name: &str, verb: &str, body: Value) -> reqwest::Response {
        self.http.post(self.url(&format!("/v1/subscriptions/{name}:{verb}"))).json(&body).send().await.unwrap()
    }

    pub async fn stats(&self, name: &str) -> Value {
        self.get_json(&format!("/v1/subscriptions/{name}")).await["stats"].clone()
    }

    /// Waits up to `limit` until subscription `name` has nothing pending
    /// or in flight: every event it took is acknowledged.
    pub async fn acknowledged(&self, name: &str, limit: Duration) {
        eventually(&format!("every event acknowledged on {name}"), limit, async || {
            let stats = self.stats(name).await;
            if stats["pending"] == 0 && stats["in_flight"] == 0 { Ok(()) } else { Err(stats) }
        })
        .await
    }

    /// Dead letters matching `query` (e.g. `kind=event`), waiting up to
    /// `limit` for at least `n` of them.
    pub async fn dead_letters(&self, query: &str, n: usize, limit: Duration) -> Vec<Value> {
        eventually(&format!("{n} dead letters for {query}"), limit, async || {
            let page = self.get_json(&format!("/v1/dead-letters?{query}")).await;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.len() >= n { Ok(items) } else { Err(page) }
        })
        .await
    }
}
