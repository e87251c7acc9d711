//! herald's logs never carry a token: run with every request logged at
//! debug level, tokens sent in query strings (accepted or refused) leave
//! no trace in what it writes.

use std::{path::Path, time::Duration};

use herald_testkit::{
    auth::hs256_jwt,
    client, free_port,
    process::{Serve, serve},
    ready,
};
use serde_json::{Value, json};

const SECRET: &str = "a-logging-test-secret-of-32-characters";
const STATIC: &str = "static-token-that-must-not-be-logged";

fn config(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("herald.toml");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[auth]\n\
         users = {{ algorithm = \"HS256\", secret = \"{SECRET}\", audience = \"herald\" }}\n\
         tokens = [{{ name = \"shop\", token = \"{STATIC}\", role = \"service\" }}]\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_token_in_a_query_string_is_never_logged_even_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("herald.log");
    let mut herald = serve(env!("CARGO_BIN_EXE_herald"), Serve::Config(&config(dir.path(), port)))
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the herald binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = client();
    assert!(ready(&http, &base, Duration::from_secs(30)).await, "herald did not become ready");

    let exp = chrono::Utc::now().timestamp() + 600;
    let claims = json!({"sub": "alice", "exp": exp, "aud": "herald"});
    let user = hs256_jwt(SECRET, &claims);
    let asks = [
        format!("/v1/operations?access_token={STATIC}"),
        format!("/v1/me/operations?access_token={user}"),
        format!("/v1/me/notifications/stream?access_token={user}"),
        format!("/v1/operations/op_00000000000000000000000000/events?access_token={user}"),
    ];
    for ask in &asks {
        // On a connection already in use (hyper's path)…
        let resp = http.get(format!("{base}{ask}")).send().await.unwrap();
        let status = resp.status().as_u16();
        drop(resp);
        assert!([200, 401, 404].contains(&status), "{ask}: {status}");
        // …and on a new one (event streams' own path).
        let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        drop(fresh.get(format!("{base}{ask}")).send().await.unwrap());
    }
    let mine: Value =
        http.get(format!("{base}/v1/me/operations")).bearer_auth(&user).send().await.unwrap().json().await.unwrap();
    assert!(mine["items"].is_array(), "{mine}");

    let _ = herald.kill();
    let _ = herald.wait();
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.contains("path=/v1/me/operations"), "requests are logged at debug level:\n{written}");
    for secret in [STATIC, user.as_str(), SECRET] {
        assert!(!written.contains(secret), "a secret is in the log:\n{written}");
    }
}
