//! Helpers for the messaging tests: CloudEvents, publishing, subscriptions.

use std::time::Duration;

use serde_json::{Value, json};

use super::helpers::TestApp;

/// A valid CloudEvent in the JSON format, with `extra` attributes.
pub fn event(id: &str, kind: &str, extra: Value) -> Value {
    let mut e = json!({"specversion": "1.0", "id": id, "source": "/tests", "type": kind});
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
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

    /// Dead letters matching `query` (e.g. `kind=event`), waiting up to
    /// `limit` for at least `n` of them.
    pub async fn dead_letters(&self, query: &str, n: usize, limit: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let page = self.get_json(&format!("/v1/dead-letters?{query}")).await;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.len() >= n {
                return items;
            }
            assert!(tokio::time::Instant::now() < deadline, "fewer than {n} dead letters for {query}: {page}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
