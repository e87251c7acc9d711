//! A real herald on port 0 for the SDK's tests, and child processes of
//! the test binary itself (for the tests that kill a service or a consumer).

#![allow(dead_code)]

use herald_server::config::ServiceConfig;
pub use herald_testkit::Herald;

/// Starts herald with these workflows; `services` are (name, url, secret).
pub async fn herald(workflow_files: &[&str], services: &[(&str, &str, Option<&str>)]) -> Herald {
    Herald::build()
        .workflows(workflow_files)
        .config(|config| {
            config.engine.poll_interval = herald_core::Span::from_millis(100);
            for (name, url, secret) in services {
                let mut svc = ServiceConfig::new(vec![url.to_string()]);
                svc.secret = secret.map(str::to_string);
                config.services.insert(name.to_string(), svc);
            }
        })
        .start()
        .await
}

/// Child processes of this test binary, as the broker's process tests run them.
#[allow(unused_imports)] // each test binary uses its part
pub use herald_broker::contract::process::{child_test as child, kill_mid_batch_then_drain, wait_for_line};

/// The testkit's CloudEvent, typed as the SDK takes it.
pub fn event(id: &str, kind: &str) -> herald_sdk::CloudEvent {
    let more = serde_json::json!({"source": "/sdk-tests", "data": {"id": id}});
    herald_sdk::CloudEvent::from_json(herald_testkit::cloud_event(id, kind, more)).unwrap()
}
