//! `herald demo`: herald with embedded storage, the example shop and
//! account services on loopback (the shop's inventory in a database under
//! the data directory, its events relayed to herald's topics), a local SMTP
//! sink for herald's emails, and the demo page. The demo plays the
//! application that fronts herald: it hands the page a user token
//! (`POST /demo/session`) so the notification centre works with no set-up,
//! and shows the emails that never left the machine (`GET /demo/outbox`).
//!
//! The demo's workflows are built in; a folder of workflow files given as
//! usual (`--workflows`, `workflows` in the `--config` file) adds to them,
//! and a file there with a built-in workflow's name replaces it: a shorter
//! `decide_within` to try the default, say, or the browser test's own.

use std::{
    future::Future,
    io::Write,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    routing::{get, post},
};
use herald_demo::smtp::SmtpSink;
use herald_http::problem::ApiError;
use herald_server::{
    Application, Config,
    config::{EmailConfig, EmailTls, JwtAlgorithm, ServiceConfig, StaticRole, UserTokens},
    workflows,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub async fn run(
    mut config: Config,
    pace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let demo = herald_demo::start(pace, &config.data_dir).await?;
    for (name, url) in demo.services() {
        config.services.entry(name).or_insert(ServiceConfig::new(vec![url]));
    }
    // The shop's analytics hears of orders and stock movements by
    // subscription, unless the configuration says otherwise.
    for (name, definition) in herald_demo::subscriptions() {
        if !config.subscriptions.contains_key(name) {
            config.subscriptions.insert(name.to_string(), serde_json::from_value(definition)?);
        }
    }
    let public_url = config.public_url.clone();
    let sink = SmtpSink::start(0).await?;
    config.email.get_or_insert(EmailConfig {
        host: "127.0.0.1".into(),
        port: sink.port,
        tls: EmailTls::None,
        username: None,
        password: None,
        from: "herald demo <noreply@herald.demo>".into(),
        timeout: None,
        retry: None,
    });
    // A fresh secret each run: the demo's user tokens are only for this run.
    let secret = hex::encode(rand::random::<[u8; 32]>());
    if config.auth.users.is_none() && config.auth.tokens.is_empty() {
        config.auth.users = Some(UserTokens {
            algorithm: JwtAlgorithm::HS256,
            secret: Some(secret.clone()),
            public_key: None,
            issuer: None,
            // As a deployment should: tokens made for another application
            // are refused (and herald has nothing to warn about).
            audience: Some(DEMO_AUDIENCE.into()),
        });
        // curl and the page's buttons work without a token, as the shop's
        // own back end would.
        config.auth.anonymous = Some(StaticRole::Admin);
    }
    let mut definitions = Vec::new();
    for (file, text) in herald_demo::workflows() {
        definitions.push(workflows::parse_checked(file, text, &config.services)?.1);
    }
    if let Some(dir) = &config.workflows {
        for (path, wf) in workflows::read_dir(dir, &config.services)? {
            if definitions.iter().any(|d| d.name == wf.name) {
                tracing::info!(workflow = %wf.name, %path, "the demo's own workflow is replaced by this file");
            }
            definitions.retain(|d| d.name != wf.name);
            definitions.push(wf);
        }
    }
    let routes = Router::new()
        .route("/demo/session", post(session))
        .route("/demo/outbox", get(outbox))
        .with_state(Demo { secret, sink });
    let app = Application::build_with(config, definitions).await?.merge(routes);
    let base = format!("http://{}", app.local_addr());
    // The inventory's outbox can be published only now that herald is bound.
    demo.start_relay(&relay_target(public_url, app.local_addr()));
    // Written, not printed: a reader that stopped reading (`| head`, a
    // test that found the address) must not bring the demo down.
    let _ = writeln!(
        std::io::stdout(),
        r#"
herald demo is running.

  Open {base}/ to place an order or delete an account and watch it happen.

  Or from a shell:
    curl -si {base}/v1/workflows/place-order/operations \
      -H 'content-type: application/json' \
      -d '{{"customer": "alice", "items": [{{"sku": "tea", "qty": 1}}], "card": "4242424242424242"}}'
    curl -s {base}/v1/operations/<id>            # the operation, its steps and timeline
    curl -sN {base}/v1/operations/<id>/events    # live, as Server-Sent Events

  A declined card: "card": "4000000000000002". Deleting an account:
    curl -si {base}/v1/workflows/delete-account/operations \
      -H 'content-type: application/json' -d '{{"user_id": "alice", "email": "alice@example.com"}}'

  alice's inbox (a demo token):
    TOKEN=$(curl -s {base}/demo/session -H 'content-type: application/json' -d '{{"user": "alice"}}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
    curl -s {base}/v1/me/notifications -H "Authorization: Bearer $TOKEN"

  Emails herald sent (they never leave this machine): {base}/demo/outbox
  API description: {base}/v1/openapi.json
  Ctrl-C stops it; the data stays for next time.
"#
    );
    app.run_until_stopped(shutdown).await
}

/// Where the relay reaches herald: its public URL if set, else the bound
/// address (loopback when bound to every interface).
fn relay_target(public_url: Option<String>, bound: SocketAddr) -> String {
    public_url.unwrap_or_else(|| {
        let ip = if bound.ip().is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { bound.ip() };
        format!("http://{}", SocketAddr::new(ip, bound.port()))
    })
}

#[derive(Clone)]
struct Demo {
    secret: String,
    sink: SmtpSink,
}

#[derive(Deserialize)]
struct SessionRequest {
    user: String,
}

/// The `aud` of the demo's user tokens.
const DEMO_AUDIENCE: &str = "herald-demo";

/// A user token for whoever the page says it is: the demo's stand-in for
/// the application's own sign-in.
async fn session(State(demo): State<Demo>, Json(req): Json<SessionRequest>) -> Result<Json<Value>, ApiError> {
    let ok =
        (1..=64).contains(&req.user.len()) && req.user.chars().all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c));
    if !ok {
        return Err(ApiError::InvalidInput("`user` must be 1-64 letters, digits or _ . @ -".into()));
    }
    let exp = chrono::Utc::now().timestamp() + 24 * 3600;
    let claims = json!({"sub": req.user, "exp": exp, "aud": DEMO_AUDIENCE});
    let key = jsonwebtoken::EncodingKey::from_secret(demo.secret.as_bytes());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({"token": token, "user": req.user})))
}

/// Emails herald sent through the local sink, newest first.
async fn outbox(State(demo): State<Demo>) -> Json<Vec<herald_demo::smtp::Mail>> {
    let mut mails = demo.sink.mails();
    mails.reverse();
    Json(mails)
}
