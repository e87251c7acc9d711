//! The authorization matrix: every endpoint, the gateway's access levels
//! included, asked by every kind of caller, each answer checked against
//! one table — and where the answer is a refusal, nothing changed.

use herald_gateway::access::Access;
use herald_server::config::{ServiceConfig, StaticRole, StaticToken, UserTokens};
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "a-matrix-test-secret-of-32-characters!!";
const SHOP: &str = "shop-token-0123456789";
const PAYMENTS: &str = "payments-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";
const SCRAPER: &str = "metrics-token-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Malformed,
    Expired,
    NotYetValid,
    WrongAudience,
    Alice,
    Bob,
    /// A service's token that speaks for `shop`.
    Shop,
    /// One that speaks for `payment`.
    Payments,
    Admin,
    /// A metrics token: `/metrics`, and no caller anywhere else.
    Scraper,
}

const EVERYONE: [Who; 11] = [
    Who::Nobody,
    Who::Malformed,
    Who::Expired,
    Who::NotYetValid,
    Who::WrongAudience,
    Who::Alice,
    Who::Bob,
    Who::Shop,
    Who::Payments,
    Who::Admin,
    Who::Scraper,
];

fn jwt(claims: Value) -> String {
    herald_testkit::auth::hs256_jwt(SECRET, &claims)
}

impl Who {
    fn token(self) -> Option<String> {
        let now = chrono::Utc::now().timestamp();
        let user = |sub: &str| jwt(json!({"sub": sub, "exp": now + 600, "aud": "herald"}));
        match self {
            Who::Nobody => None,
            Who::Malformed => Some("not.a.token".into()),
            Who::Expired => Some(jwt(json!({"sub": "alice", "exp": now - 3600, "aud": "herald"}))),
            Who::NotYetValid => {
                Some(jwt(json!({"sub": "alice", "exp": now + 3600, "nbf": now + 600, "aud": "herald"})))
            }
            Who::WrongAudience => Some(jwt(json!({"sub": "alice", "exp": now + 600, "aud": "another-app"}))),
            Who::Alice => Some(user("alice")),
            Who::Bob => Some(user("bob")),
            Who::Shop => Some(SHOP.into()),
            Who::Payments => Some(PAYMENTS.into()),
            Who::Admin => Some(ADMIN.into()),
            Who::Scraper => Some(SCRAPER.into()),
        }
    }

    /// Stands for a caller of the API (a metrics token does not).
    fn valid(self) -> bool {
        !matches!(
            self,
            Who::Nobody | Who::Malformed | Who::Expired | Who::NotYetValid | Who::WrongAudience | Who::Scraper
        )
    }

    fn user(self) -> bool {
        matches!(self, Who::Alice | Who::Bob)
    }
}

/// Who an endpoint lets in.
#[derive(Clone, Copy)]
enum Rule {
    /// Anyone, with any token or none.
    Open,
    /// Any valid token.
    Anyone,
    /// Services and admins.
    Services,
    /// End users only (`/v1/me`).
    EndUsers,
    /// Alice (its subject), services and admins; to Bob it does not exist.
    AlicesOperation,
    /// Alice's inbox: to Bob it does not exist, services have no inbox.
    AlicesNotification,
    /// A token that speaks for `payment`, and admins.
    SpeaksForPayment,
    Admins,
    /// Metrics tokens and admins (`/metrics`).
    Scrapers,
    /// Nobody: the path is not served (a step's path, a service that is off).
    Nobody,
    /// Only the step's callback token, which none of them holds.
    CallbackToken,
}

impl Rule {
    /// The status class `who` gets: 2 for success (or the row's own
    /// allowed status), else the refusal's status.
    fn expect(self, who: Who) -> u16 {
        let refused_token = if who.valid() { None } else { Some(401) };
        match self {
            Rule::Open => 2,
            Rule::Nobody => 404,
            Rule::CallbackToken => 401,
            Rule::Anyone => refused_token.unwrap_or(2),
            Rule::Services => refused_token.unwrap_or(if who.user() { 403 } else { 2 }),
            Rule::EndUsers => refused_token.unwrap_or(if who.user() { 2 } else { 403 }),
            Rule::AlicesOperation => refused_token.unwrap_or(if who == Who::Bob { 404 } else { 2 }),
            Rule::AlicesNotification => refused_token.unwrap_or(match who {
                Who::Alice => 2,
                Who::Bob => 404,
                _ => 403,
            }),
            Rule::SpeaksForPayment => {
                refused_token.unwrap_or(if matches!(who, Who::Payments | Who::Admin) { 2 } else { 403 })
            }
            Rule::Admins => refused_token.unwrap_or(if who == Who::Admin { 2 } else { 403 }),
            Rule::Scrapers if matches!(who, Who::Scraper | Who::Admin) => 2,
            Rule::Scrapers => refused_token.unwrap_or(403),
        }
    }
}

struct Row {
    method: &'static str,
    path: String,
    body: Option<Value>,
    rule: Rule,
    /// A status that counts as success here (a second cancel conflicts, a
    /// second delete finds nothing).
    also: Option<u16>,
}

fn row(method: &'static str, path: impl Into<String>, body: Option<Value>, rule: Rule) -> Row {
    Row { method, path: path.into(), body, rule, also: None }
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_the_table_says_and_refusals_change_nothing() {
    let svc = StepService::start().await;
    svc.on("/charge", Reply::Accept);
    let wf = "name = \"order\"\nsubject = \"/user\"\n[[steps]]\nname = \"charge\"\n\
              call = { service = \"shop\", path = \"/charge\" }\n";
    let mut app = spawn_app_with(tempfile::tempdir().unwrap(), &[wf], &svc, |c| {
        c.auth.users = Some(UserTokens { audience: Some("herald".into()), ..herald_testkit::auth::hs256(SECRET) });
        let token = |name: &str, token: &str, role| StaticToken {
            name: name.into(),
            token: token.into(),
            role,
            services: None,
        };
        c.auth.tokens = vec![
            token("shop", SHOP, StaticRole::Service),
            StaticToken { services: Some(vec!["payment".into()]), ..token("payments", PAYMENTS, StaticRole::Service) },
            token("ops", ADMIN, StaticRole::Admin),
            token("prometheus", SCRAPER, StaticRole::Metrics),
        ];
        let mut shop = ServiceConfig::new(vec![svc.url.clone()]);
        shop.gateway_paths = [("/catalog", Access::Public), ("/account", Access::User), ("/admin", Access::Admin)]
            .into_iter()
            .map(|(p, a)| (p.to_string(), a))
            .collect();
        c.services.insert("shop".into(), shop);
        c.services.insert("payment".into(), ServiceConfig::new(vec!["http://10.0.0.8".into()]));
        let mut off = ServiceConfig::new(vec![svc.url.clone()]);
        off.gateway = Access::Off;
        c.services.insert("internal".into(), off);
    })
    .await;
    app.token = Some(ADMIN.into());
    let start = |user: &str| {
        app.http.post(app.url("/v1/workflows/order/operations")).bearer_auth(SHOP).json(&json!({"user": user}))
    };
    let alices =
        start("alice").send().await.unwrap().json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let to_cancel =
        start("alice").send().await.unwrap().json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    for id in [&alices, &to_cancel] {
        app.wait_for(id, std::time::Duration::from_secs(10), |op| op["steps"][0]["awaiting_callback"] == true).await;
    }
    let pulls = app.http.put(app.url("/v1/subscriptions/pulls")).bearer_auth(SHOP).json(&json!({"topic": "orders"}));
    assert_eq!(pulls.send().await.unwrap().status(), 201);
    let notification = format!("nt_{}", &alices[3..]);

    let event = cloud_event("e1", "Placed", json!({"data": {}}));
    let push = json!({"topic": "payments", "push": {"service": "payment", "path": "/in"}});
    let gone = |mut r: Row, status| {
        r.also = Some(status);
        r
    };
    let table = vec![
        row("GET", "/healthz", None, Rule::Open),
        row("GET", "/readyz", None, Rule::Open),
        row("GET", "/metrics", None, Rule::Scrapers),
        row("GET", "/v1/openapi.json", None, Rule::Open),
        row("GET", "/", None, Rule::Open),
        row("GET", "/ui/app.js", None, Rule::Open),
        row("GET", "/ui/herald.js", None, Rule::Open),
        row("GET", "/ui/app.css", None, Rule::Open),
        row("GET", "/operator", None, Rule::Open),
        row("GET", "/ui/operator.js", None, Rule::Open),
        row("GET", "/ui/operator.css", None, Rule::Open),
        row("GET", "/v1/clock", None, Rule::Anyone),
        row("POST", "/v1/ui/lag", Some(json!({"lags_ms": [12.5]})), Rule::Anyone),
        row("GET", "/v1/operations?flag=late", None, Rule::Anyone),
        row("GET", "/v1/workflows", None, Rule::Anyone),
        row("GET", "/v1/workflows/order", None, Rule::Anyone),
        row("POST", "/v1/workflows/order/operations", Some(json!({"user": "carol"})), Rule::Services),
        row("GET", "/v1/operations", None, Rule::Anyone),
        row("GET", "/v1/me/operations", None, Rule::EndUsers),
        row("GET", format!("/v1/operations/{alices}"), None, Rule::AlicesOperation),
        row("GET", format!("/v1/operations/{alices}/events"), None, Rule::AlicesOperation),
        gone(row("POST", format!("/v1/operations/{to_cancel}:cancel"), Some(json!({})), Rule::AlicesOperation), 409),
        row(
            "POST",
            format!("/v1/operations/{alices}/steps/charge:complete"),
            Some(json!({"result": {}})),
            Rule::CallbackToken,
        ),
        row("GET", "/v1/me/notifications", None, Rule::EndUsers),
        row("GET", "/v1/me/notifications/stream", None, Rule::EndUsers),
        row("POST", format!("/v1/me/notifications/{notification}:read"), Some(json!({})), Rule::AlicesNotification),
        row("POST", "/v1/me/notifications:read-all", Some(json!({})), Rule::EndUsers),
        row("GET", "/v1/services", None, Rule::Services),
        row(
            "PUT",
            "/v1/services/payment/instances/p-1",
            Some(json!({"url": "http://10.0.0.9"})),
            Rule::SpeaksForPayment,
        ),
        gone(row("DELETE", "/v1/services/payment/instances/p-1", None, Rule::SpeaksForPayment), 404),
        row("POST", "/v1/topics/orders/events", Some(event), Rule::Services),
        row("GET", "/v1/subscriptions", None, Rule::Services),
        row("PUT", "/v1/subscriptions/pay-out", Some(push), Rule::SpeaksForPayment),
        row("GET", "/v1/subscriptions/pay-out", None, Rule::Services),
        row("POST", "/v1/subscriptions/pulls:pull", Some(json!({"max": 1})), Rule::Services),
        gone(row("DELETE", "/v1/subscriptions/pay-out", None, Rule::SpeaksForPayment), 404),
        row("GET", "/v1/dead-letters", None, Rule::Admins),
        row("POST", "/v1/dead-letters:redrive", Some(json!({"workflow": "none"})), Rule::Admins),
        gone(row("GET", "/v1/dead-letters/1", None, Rule::Admins), 404),
        gone(row("POST", "/v1/dead-letters/1:redrive", Some(json!({})), Rule::Admins), 404),
        gone(row("DELETE", "/v1/dead-letters/1", None, Rule::Admins), 404),
        row("GET", "/gw/shop/catalog/tea", None, Rule::Open),
        row("GET", "/gw/shop/account/orders", None, Rule::Anyone),
        row("GET", "/gw/shop/orders", None, Rule::Services),
        row("GET", "/gw/shop/admin/users", None, Rule::Admins),
        row("GET", "/gw/shop/charge", None, Rule::Nobody),
        row("GET", "/gw/internal/anything", None, Rule::Nobody),
    ];

    let mut failures = Vec::new();
    for r in &table {
        for who in EVERYONE {
            let before = state(&app, &svc).await;
            let mut req = app.http.request(r.method.parse().unwrap(), app.url(&r.path));
            if let Some(t) = who.token() {
                req = req.bearer_auth(t);
            }
            req = match &r.body {
                Some(b) if r.path.starts_with("/v1/topics/") => {
                    req.header("content-type", "application/cloudevents+json").body(b.to_string())
                }
                Some(b) => req.json(b),
                None => req,
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            drop(resp); // event streams: the status is all that is asked
            let expected = r.rule.expect(who);
            let ok = match expected {
                2 => (200..300).contains(&status) || Some(status) == r.also,
                refusal => status == refusal,
            };
            if !ok {
                failures.push(format!("{} {} as {who:?}: {status}, expected {expected}", r.method, r.path));
            }
            if status >= 400 && status != r.also.unwrap_or(0) {
                let after = state(&app, &svc).await;
                if after != before {
                    failures
                        .push(format!("{} {} as {who:?} answered {status} yet changed something", r.method, r.path));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        table.len() * EVERYONE.len(),
        failures.join("\n")
    );
}

/// What a refused request must leave as it was.
async fn state(app: &TestApp, svc: &StepService) -> Value {
    let get = |path: &'static str, token: String| {
        let req = app.http.get(app.url(path)).bearer_auth(token);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let admin = || ADMIN.to_string();
    // Operations started by an earlier case settle first: each waits for
    // its step's callback, or has ended.
    let operations = eventually("operations settled", std::time::Duration::from_secs(10), async || {
        let ops = get("/v1/operations", admin()).await;
        let settled = |o: &Value| o["status"] == "cancelled" || o["steps"][0]["awaiting_callback"] == true;
        if ops["items"].as_array().unwrap().iter().all(settled) { Ok(ops) } else { Err(ops) }
    })
    .await;
    let services = get("/v1/services", admin()).await;
    let instances: Vec<Value> = services["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            json!([s["name"], s["instances"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect::<Vec<_>>()])
        })
        .collect();
    let subscriptions: Vec<Value> = get("/v1/subscriptions", admin()).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!([s["name"], s["topic"], s["push"]]))
        .collect();
    let dead = get("/v1/dead-letters", admin()).await;
    let now = chrono::Utc::now().timestamp();
    let alice = jwt(json!({"sub": "alice", "exp": now + 600, "aud": "herald"}));
    let inbox = get("/v1/me/notifications", alice).await;
    json!({
        "operations": operations["items"].as_array().unwrap().iter().map(|o| json!([o["id"], o["status"], o["last_seq"]])).collect::<Vec<_>>(),
        "instances": instances,
        "subscriptions": subscriptions,
        "dead": dead["items"],
        "inbox": inbox["unread"],
        "calls": svc.all_calls().len(),
    })
}
