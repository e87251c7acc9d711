//! `/metrics` after a scripted run: each counter moved by exactly what
//! happened, the histograms hold each finished thing, the gauges read the
//! store, and Prometheus's own parser takes the text.

use std::time::Duration;

use herald_server::config::ServiceConfig;
use herald_testkit::openmetrics::Exposition;
use serde_json::json;

use crate::helpers::*;

/// A workflow whose one step is held for a person when it fails.
const HELD: &str = "name = \"held\"\n[[steps]]\nname = \"h\"\ncall = { service = \"svc\", path = \"/h\" }\n\
                    retry = { attempts = 1 }\non_failure = \"hold\"\n";

/// One operation per subject at a time; a second is refused.
const SOLO: &str = "name = \"solo\"\nsubject = \"/user\"\nconcurrency = { key = \"subject\", on_conflict = \"reject\" }\n\
                    [[steps]]\nname = \"s\"\ncall = { service = \"svc\", path = \"/s\" }\n";

async fn scrape(app: &TestApp) -> (String, String) {
    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    (kind, resp.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_a_scripted_run_exactly_and_prometheus_parses_them() {
    let svc = StepService::start().await;
    svc.then("/b", vec![Reply::Status(500, "down"), Reply::Status(500, "down")]);
    svc.on("/h", Reply::Status(500, "broken"));
    svc.on("/s", Reply::Accept);
    let order = sequential("order", &["a", "b"], "expected_within = \"1h\"");
    svc.on("/missing", Reply::Status(404, "no such thing"));
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&order, HELD, SOLO], &svc, |c| {
        // Nothing listens on port 1: the gateway answers for it.
        c.services.insert("gone".into(), ServiceConfig::new(vec!["http://127.0.0.1:1".into()]));
    })
    .await;

    let keyed = |n: u32| {
        let url = app.url("/v1/workflows/order/operations");
        app.http.post(url).header("idempotency-key", "k").json(&json!({ "n": n })).send()
    };
    let first = keyed(1).await.unwrap().json::<serde_json::Value>().await.unwrap();
    assert_eq!(keyed(1).await.unwrap().status(), 202, "a replay");
    assert_eq!(keyed(2).await.unwrap().status(), 422, "the key with another body");
    let mut orders = vec![first["id"].as_str().unwrap().to_string()];
    for n in 2..=3 {
        orders.push(app.start_id("order", json!({"n": n})).await);
    }
    for id in &orders {
        assert_eq!(app.wait_final(id).await["status"], "succeeded");
    }
    let held = app.start_id("held", json!({})).await;
    app.wait_for(&held, Duration::from_secs(10), |op| op["needs_attention"] == true).await;
    let solo = app.start_id("solo", json!({"user": "ann"})).await;
    app.wait_for(&solo, Duration::from_secs(10), |op| op["steps"][0]["awaiting_callback"] == true).await;
    assert_eq!(app.start("solo", json!({"user": "ann"})).await.status(), 409);
    let sub = app.http.put(app.url("/v1/subscriptions/audit")).json(&json!({"topic": "orders"}));
    assert_eq!(sub.send().await.unwrap().status(), 201);
    for (path, status) in
        [("/gw/svc/catalog", 200), ("/gw/svc/catalog/tea", 200), ("/gw/svc/missing", 404), ("/gw/gone/x", 502)]
    {
        assert_eq!(app.http.get(app.url(path)).send().await.unwrap().status(), status, "{path}");
    }

    // A commit is counted just after it is stored: the last ones may be a
    // moment behind what the API already shows.
    let m = herald_testkit::eventually("the held step counted", Duration::from_secs(10), || async {
        let (kind, text) = scrape(&app).await;
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        let m = Exposition::parse(&text);
        (m.value("herald_steps_finished_total", &[("workflow", "held"), ("outcome", "held")]) == 1.0).then_some(m)
    })
    .await;

    let order_ = [("workflow", "order")];
    let v = |name: &str, labels: &[(&str, &str)]| m.value(name, labels);
    assert_eq!(v("herald_operations_accepted_total", &order_), 3.0, "a replay is not a new operation");
    assert_eq!(v("herald_operations_accepted_total", &[("workflow", "held")]), 1.0);
    assert_eq!(v("herald_operations_accepted_total", &[("workflow", "solo")]), 1.0, "the refused one is not");
    let finished = [("workflow", "order"), ("outcome", "succeeded"), ("expected", "met")];
    assert_eq!(v("herald_operations_finished_total", &finished), 3.0);
    assert_eq!(v("herald_operations_finished_total", &[]), 3.0, "nothing else finished");
    let done = [("workflow", "order"), ("outcome", "succeeded")];
    assert_eq!(v("herald_operation_duration_seconds_count", &done), 3.0);
    assert_eq!(v("herald_operation_duration_seconds_bucket", &[done[0], done[1], ("le", "+Inf")]), 3.0);
    assert!(v("herald_operation_duration_seconds_sum", &done) > 0.0);
    assert_eq!(v("herald_operation_first_feedback_seconds_count", &order_), 3.0);
    assert!(v("herald_operation_first_feedback_seconds_sum", &order_) > 0.0, "the first news is a call's answer");
    assert_eq!(v("herald_operation_first_feedback_seconds_count", &[]), 5.0, "every accepted operation had news");

    let step = |s: &'static str| [("workflow", "order"), ("step", s), ("phase", "forward")];
    assert_eq!(v("herald_step_attempts_total", &step("a")), 3.0);
    assert_eq!(v("herald_step_attempts_total", &step("b")), 5.0, "two failed first");
    assert_eq!(v("herald_step_retries_total", &step("b")), 2.0);
    assert_eq!(v("herald_step_retries_total", &step("a")), 0.0);
    let b_done = [("workflow", "order"), ("step", "b"), ("outcome", "succeeded")];
    assert_eq!(v("herald_steps_finished_total", &b_done), 3.0);
    assert_eq!(v("herald_step_duration_seconds_count", &b_done), 3.0);
    assert_eq!(v("herald_steps_finished_total", &[("workflow", "held"), ("step", "h")]), 1.0, "held, only");

    let conflict =
        |w: &'static str, outcome: &'static str| v("herald_conflicts_total", &[("workflow", w), ("outcome", outcome)]);
    assert_eq!(conflict("order", "replayed"), 1.0);
    assert_eq!(conflict("order", "key_reused"), 1.0);
    assert_eq!(conflict("solo", "rejected"), 1.0);
    assert_eq!(v("herald_conflicts_total", &[]), 3.0);

    assert_eq!(v("herald_operations_needing_attention", &[]), 1.0);
    assert_eq!(v("herald_operations_delayed", &[]), 0.0);
    assert_eq!(v("herald_dead_letters", &[("kind", "step")]), 1.0);
    assert_eq!(m.count("herald_dead_letters", &[]), 1, "no other kind");
    assert_eq!(v("herald_tasks_due", &[]), 0.0, "nothing waits to run");
    assert_eq!(v("herald_subscription_depth", &[("subscription", "audit"), ("state", "pending")]), 0.0);
    assert_eq!(m.count("herald_subscription_lag_seconds", &[("subscription", "audit")]), 1);

    let gw = |service: &'static str, code: &'static str, source: &'static str| {
        v("herald_gateway_requests_total", &[("service", service), ("code", code), ("source", source)])
    };
    assert_eq!(gw("svc", "2xx", "service"), 2.0);
    assert_eq!(gw("svc", "4xx", "service"), 1.0);
    assert_eq!(gw("gone", "5xx", "herald"), 1.0, "no instance could be reached: herald answered");
    assert_eq!(v("herald_gateway_requests_total", &[]), 4.0);
    assert_eq!(v("herald_gateway_request_duration_seconds_count", &[("service", "svc")]), 3.0);
    assert_eq!(v("herald_gateway_rate_limited_total", &[]), 0.0);
    assert_eq!(v("herald_service_circuit_state", &[("service", "svc"), ("state", "closed")]), 1.0);
    assert_eq!(v("herald_service_circuit_state", &[("service", "svc")]), 1.0, "one state at a time");
    assert_eq!(v("herald_service_instance_up", &[("service", "svc"), ("instance", "config-0")]), 1.0);
    assert_eq!(v("herald_service_in_flight", &[("service", "svc")]), 0.0, "no call is out");
    let calls = 3 + 5 + 1 + 1; // order's a and b, held's h, solo's s
    assert_eq!(v("herald_service_wait_seconds_count", &[("service", "svc")]), f64::from(calls), "each call's turn");

    let (_, before_watching) = scrape(&app).await;

    // A watcher of the held operation from where it is: what it is sent
    // next happens while it watches.
    let at = app.get(&held).await["last_seq"].to_string();
    let url = app.url(&format!("/v1/operations/{held}/events"));
    let stream = app.http.get(url).header("last-event-id", at).send().await.unwrap();
    let open = Exposition::parse(&scrape(&app).await.1);
    assert_eq!(open.value("herald_live_streams", &[("stream", "timeline")]), 1.0);
    svc.on("/h", Reply::Json(json!({})));
    let letter = app.get_json("/v1/dead-letters?kind=step").await["items"][0]["id"].clone();
    let redrive = app.http.post(app.url(&format!("/v1/dead-letters/{letter}:redrive"))).json(&json!({}));
    assert_eq!(redrive.send().await.unwrap().status(), 204);
    let seen = follow(stream, "succeeded").await;
    let after = herald_testkit::eventually("the stream closed", Duration::from_secs(10), || async {
        let m = Exposition::parse(&scrape(&app).await.1);
        (m.value("herald_live_streams", &[("stream", "timeline")]) == 0.0).then_some(m)
    })
    .await;
    let sent = after.value("herald_live_events_sent_total", &[("stream", "timeline")]);
    assert_eq!(sent, seen.len() as f64, "{seen:?}");
    let timed = after.value("herald_live_commit_to_send_seconds_count", &[]);
    assert_eq!(timed, sent, "each was committed while the stream was open");
    assert_eq!(after.value("herald_operations_needing_attention", &[]), 0.0, "redriven and done");

    let (_, text) = scrape(&app).await;
    shipped_files_use_only_what_herald_serves(&[&before_watching, &text]);
}

/// Every metric the dashboard and the alert rules in `deploy/` read is one
/// these scrapes describe (by the name of its family: a family with no
/// sample yet is left out of a scrape).
fn shipped_files_use_only_what_herald_serves(scrapes: &[&str]) {
    let described: std::collections::BTreeSet<&str> =
        scrapes.iter().flat_map(|s| s.lines()).filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in ["deploy/grafana/herald.json", "deploy/prometheus/alerts.yml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let used: std::collections::BTreeSet<&str> = text
            .match_indices("herald_")
            .map(|(i, _)| {
                let end =
                    text[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |n| i + n);
                &text[i..end]
            })
            .collect();
        assert!(!used.is_empty(), "{file} reads no metric");
        for name in used {
            let family =
                ["_bucket", "_sum", "_count", "_total"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
            assert!(described.contains(family), "{file} reads {name}, which herald does not serve");
        }
    }
}

#[tokio::test]
async fn lag_a_page_reports_is_counted_and_a_report_out_of_bounds_changes_nothing() {
    let svc = StepService::start().await;
    let app = spawn_app(&[], &svc).await;
    let clock: serde_json::Value = app.http.get(app.url("/v1/clock")).send().await.unwrap().json().await.unwrap();
    let skew = clock["now_ms"].as_i64().unwrap() - chrono::Utc::now().timestamp_millis();
    assert!(skew.abs() < 5_000, "herald's clock: {clock}");

    let report = |body: serde_json::Value| app.http.post(app.url("/v1/ui/lag")).json(&body).send();
    assert_eq!(report(json!({"lags_ms": [40, 120.5, 2500]})).await.unwrap().status(), 204);
    for bad in [
        json!({"lags_ms": []}),
        json!({"lags_ms": [-1]}),
        json!({"lags_ms": [3_600_001]}),
        json!({"lags_ms": vec![1; 101]}),
        json!({"lags_ms": ["soon"]}),
        json!({"lags": [1]}),
    ] {
        let resp = report(bad.clone()).await.unwrap();
        assert_eq!(resp.status(), 422, "{bad}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
    let (_, text) = scrape(&app).await;
    let m = Exposition::parse(&text);
    assert_eq!(m.value("herald_ui_commit_to_render_seconds_count", &[]), 3.0, "only the good report");
    assert!((m.value("herald_ui_commit_to_render_seconds_sum", &[]) - 2.6605).abs() < 1e-9);
    assert_eq!(m.value("herald_ui_commit_to_render_seconds_bucket", &[("le", "0.05")]), 1.0);
}
