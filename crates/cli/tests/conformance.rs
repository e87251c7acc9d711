//! herald against its own OpenAPI document: schemathesis generates requests
//! to every operation the document describes, valid and not, and checks
//! that herald never answers 5xx and that every answer (status, content
//! type, headers, body) is one the document describes. `herald demo`
//! serves, with its workflows running, and is asked with an admin's token,
//! then with an end user's.
//!
//! schemathesis comes from the Python registry; `.ci/run` installs it into
//! `target/schemathesis`. Without it the test says so and passes, unless
//! `HERALD_TEST_TOOLS=require` (as in CI). CI runs a few examples per
//! operation; `HERALD_TEST_CONFORMANCE_EXAMPLES` asks for more (CONTRIBUTING.md).

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use herald_testkit::{client_within, eventually, process::Serve, ready, tools};
use serde_json::{Value, json};

const ADMIN: &str = "conformance-admin-token-0123456789";
const SECRET: &str = "conformance-user-secret-0123456789";
const AUDIENCE: &str = "herald-conformance";
/// Examples per operation in CI: about 2,000 requests a run, the whole
/// test under a minute on an idle machine of two cores.
const EXAMPLES: u32 = 30;
/// The same requests every run: a failure can be replayed.
const SEED: &str = "20261203";
/// Every check schemathesis has (no 5xx, every answer as documented, 405
/// with `Allow` for a method not documented, no answer without a token…)
/// but two, whose verdicts depend on more than the document can say:
/// whether a request the schema allows is taken depends on what herald
/// holds (a workflow's own input, the services it knows, `[registry]
/// allow`), and herald takes some that the schema refuses (a number past
/// `int64` where it reads a `u64`).
const EXCLUDED: &str = "positive_data_acceptance,negative_data_rejection";

/// The end user's run leaves out the inbox's stream, which goes on for as
/// long as its end user listens.
const USERS: [&str; 2] = ["--exclude-path", "/v1/me/notifications/stream"];

/// schemathesis's folder, or `None` (the test passes, saying why) when it
/// is missing and not required.
fn schemathesis() -> Option<PathBuf> {
    let dir = tools::in_target("schemathesis");
    if dir.join("bin/schemathesis").exists() {
        return Some(dir);
    }
    assert!(
        !tools::required(),
        "HERALD_TEST_TOOLS=require: schemathesis is needed in target/schemathesis (see .ci/run)"
    );
    eprintln!("note: schemathesis is not installed in target/schemathesis: the conformance test is skipped");
    None
}

/// Runs schemathesis against herald at `base` as the holder of `token`,
/// its report going to stderr as it comes (progress); the report, and
/// whether every check held.
fn run(tool: &Path, base: &str, token: &str, examples: u32, extra: &[&str], cwd: &Path) -> (bool, String) {
    let mut child = Command::new("python3")
        .arg(tool.join("bin/schemathesis"))
        .args(["run", &format!("{base}/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--exclude-checks", EXCLUDED])
        .args(["--max-examples", &examples.to_string(), "--seed", SEED])
        // Examples found in earlier runs would make this one differ, and
        // a slow machine is no failure of herald's.
        .args(["--generation-database", "none", "--suppress-health-check", "all"])
        .args(["--request-timeout", "20", "--no-color"])
        .args(extra)
        .env("PYTHONPATH", tool)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut report = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
        say(&format!("  {line}"));
        report.push_str(&line);
        report.push('\n');
    }
    report.push_str(&errors.join().unwrap());
    (child.wait().unwrap().success(), report)
}

/// Progress, straight to stderr as it comes: libtest would hold
/// `eprintln!` until the test ends, and drop it when it passes.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// An end user's token, as the application in front of herald would sign it.
fn user_token(subject: &str) -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    let claims = json!({"sub": subject, "exp": exp, "aud": AUDIENCE});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// Orders that succeed and fail and an account deleted, all finished, so
/// that the lists, timelines and the inbox have something to show (and no
/// event stream is left open on work still running). One after another:
/// alice's second order while her first runs would wait for her choice.
async fn seed(base: &str) {
    let http = client_within(Duration::from_secs(30));
    let order = |card: &str| json!({"customer": "alice", "items": [{"sku": "tea", "qty": 1}], "card": card});
    let starts = [
        ("place-order", order("4242424242424242")),
        ("place-order", order("4000000000000002")),
        ("delete-account", json!({"user_id": "bob", "email": "bob@example.com"})),
    ];
    for (workflow, input) in starts {
        let resp = http
            .post(format!("{base}/v1/workflows/{workflow}/operations"))
            .bearer_auth(ADMIN)
            .json(&input)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{workflow}");
        let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let (http, url) = (&http, &format!("{base}/v1/operations/{id}"));
        eventually(&format!("{id} finished"), Duration::from_secs(60), || async move {
            let op: Value = http.get(url).bearer_auth(ADMIN).send().await.ok()?.json().await.ok()?;
            ["succeeded", "failed", "cancelled"].contains(&op["status"].as_str()?).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_one_the_openapi_document_describes() {
    let Some(tool) = schemathesis() else { return };
    let examples = std::env::var("HERALD_TEST_CONFORMANCE_EXAMPLES").map_or(EXAMPLES, |n| n.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    let text = format!(
        "[[auth.tokens]]\nname = \"ops\"\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
         [auth.users]\nalgorithm = \"HS256\"\nsecret = \"{SECRET}\"\naudience = \"{AUDIENCE}\"\n"
    );
    std::fs::write(&config, text).unwrap();
    let data = dir.path().join("data");
    let how = Serve::Demo { pace: "20ms", data_dir: &data, store: None, config: Some(&config) };
    let (_demo, base) = herald_testkit::process::demo(env!("CARGO_BIN_EXE_herald"), how, &dir.path().join("demo.log"));
    assert!(ready(&herald_testkit::client(), &base, Duration::from_secs(30)).await, "herald did not become ready");
    seed(&base).await;

    let runs = [("an admin", ADMIN.to_string(), &[][..]), ("an end user", user_token("alice"), &USERS[..])];
    for (who, token, extra) in runs {
        say(&format!("schemathesis, as {who}: {examples} examples per operation"));
        let (tool, base, cwd) = (tool.clone(), base.clone(), dir.path().to_path_buf());
        let started = Instant::now();
        let (passed, report) =
            tokio::task::spawn_blocking(move || run(&tool, &base, &token, examples, extra, &cwd)).await.unwrap();
        say(&format!("schemathesis, as {who}: done in {:.0?}", started.elapsed()));
        let log = std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
        assert!(
            passed,
            "asked as {who}, herald answered as its document does not say:\n{report}\nherald's log:\n{log}"
        );
    }
}
