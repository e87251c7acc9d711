//! A real herald on port 0 for the SDK's tests, and child processes of
//! the test binary itself (for the tests that kill a service or a consumer).

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

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

/// Runs the test named `test` of this same test binary as a child process,
/// with `env`; its stdout is piped.
pub fn child(test: &str, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]).stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Reads the child's stdout until a line holding `marker` (blocking);
/// answers the line from the marker on (the test harness may print its
/// own words first on the same line).
pub fn wait_for_line(child: &mut Child, marker: &str) -> String {
    let out = child.stdout.as_mut().unwrap();
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the child ended before saying {marker:?}");
        if let Some(at) = line.find(marker) {
            return line[at..].trim().to_string();
        }
    }
}

pub fn event(id: &str, kind: &str) -> herald_sdk::CloudEvent {
    herald_sdk::CloudEvent::from_json(serde_json::json!({
        "specversion": "1.0", "id": id, "source": "/sdk-tests", "type": kind, "data": {"id": id}
    }))
    .unwrap()
}
