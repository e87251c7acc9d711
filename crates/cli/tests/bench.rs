//! `herald bench` still works end to end (a tiny run of each workload):
//! it starts herald and its worker, checks every operation's result, and
//! reports. Speed itself is measured by hand and recorded in docs/BENCH.md.

use std::process::Command;

fn bench(args: &[&str]) -> serde_json::Value {
    let chart = tempfile::NamedTempFile::with_suffix(".svg").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("bench")
        .args(args)
        .args(["--warmup", "2", "--chart"])
        .arg(chart.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(chart.path()).unwrap().starts_with("<svg"), "a chart was drawn");
    serde_json::from_slice(&out.stdout).expect("the report is JSON on stdout")
}

#[test]
fn each_workload_runs_and_reports_what_it_measured() {
    let w1 = bench(&["-w", "w1", "-n", "40", "-c", "8"]);
    assert_eq!(w1["n"], 40);
    assert!(w1["completed_per_s"].as_f64().unwrap() > 0.0);
    assert!(w1["e2e"]["p99_ms"].as_f64().unwrap() >= w1["e2e"]["p50_ms"].as_f64().unwrap());
    assert!(w1["herald_peak_rss_mb"].as_f64().unwrap() > 0.0);

    let shed = bench(&["-w", "w1-shed", "-n", "60", "-c", "8"]);
    assert!(shed["shed"]["shed"].as_u64().unwrap() > 0, "the worker shed some first attempts: {shed}");
    assert_eq!(shed["shed"]["calls"], 180 + shed["shed"]["shed"].as_u64().unwrap(), "one retry per call shed");
    assert!(shed["shed"]["clean_per_s"].as_f64().unwrap() > 0.0);

    let accept = bench(&["-w", "accept", "-n", "40", "-c", "8"]);
    assert!(accept["e2e"].is_null(), "nothing runs when only accepting");

    let w2 = bench(&["-w", "w2", "-n", "20", "-c", "4", "--watchers", "30"]);
    assert_eq!(w2["watchers"]["count"], 30);
    assert_eq!(w2["watchers"]["events_received"], 60, "each watcher saw its step and its outcome");

    let gw = bench(&["-w", "gateway", "-c", "4", "--watchers", "20", "--seconds", "1"]);
    let targets = gw["gateway"].as_array().unwrap();
    assert_eq!(targets[1]["name"], "herald");
    for t in targets {
        assert!(t["max_per_s"].as_f64().unwrap() > 0.0, "{t}");
        assert_eq!(t["held_errors"], 0, "{t}");
        assert_eq!(t["paced"][0]["errors"], 0, "{t}");
    }

    for workload in ["w3", "w3-pull"] {
        let w3 = bench(&["-w", workload, "-n", "300", "-c", "4", "--batch", "20"]);
        assert_eq!(w3["events"]["batch"], 20);
        assert!(w3["e2e"]["p50_ms"].as_f64().unwrap() > 0.0, "{workload}: every event's lag was measured");
    }
}

/// Two nodes on PostgreSQL (`HERALD_TEST_POSTGRES`, as the store's tests):
/// each operation is followed on the node that did not accept it, and
/// every event's lag across nodes is measured.
#[test]
fn w1_runs_on_two_nodes_over_postgres_and_reports_the_lag_across_them() {
    let url =
        std::env::var("HERALD_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let r = bench(&["-w", "w1", "-n", "30", "-c", "5", "--store", &url, "--nodes", "2"]);
    let run = &r["run"];
    assert_eq!(run["store"], "postgres");
    assert_eq!(run["herald_cpu_s"].as_array().unwrap().len(), 2, "{run}");
    assert!(run["events"].as_u64().unwrap() >= 30 * 4, "a step event or more and an outcome each: {run}");
    assert!(run["lag"]["p99_ms"].as_f64().unwrap() > 0.0, "{run}");
    assert!(run["postgres"]["commits_per_op"].as_f64().unwrap() > 1.0, "{run}");
}
