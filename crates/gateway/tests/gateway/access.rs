//! Who may call what through the gateway, on both lanes: a service is
//! reachable only by the callers its access names, herald's own step
//! paths not at all, a client's `Herald-*` headers never pass, and a path
//! that could be read two ways is refused before anything is sent.

use serde_json::{Value, json};

use super::{express::exchange, upstream::Upstream};
use herald_gateway::access::Access;
use herald_server::{
    Config,
    config::{ServiceConfig, StaticRole, StaticToken},
};

const SECRET: &str = "a-gateway-test-secret-of-32-characters!";
const SHOP: &str = "shop-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fn user(sub: &str) -> String {
    let exp = chrono::Utc::now().timestamp() + 600;
    herald_testkit::auth::hs256_jwt(SECRET, &json!({"sub": sub, "exp": exp}))
}

/// herald with tokens, end users, the service `shop` (service access,
/// with public, user and admin prefixes), a workflow that calls
/// `shop`'s `/charge`, and `internal`, which is off.
async fn secured(up: &Upstream, express: bool) -> (String, herald_testkit::Herald) {
    let secure = |config: &mut Config| {
        config.gateway.express = express;
        let mut shop = ServiceConfig::new(vec![up.url.clone()]);
        shop.gateway_paths = [("/catalog", Access::Public), ("/admin", Access::Admin), ("/me", Access::User)]
            .into_iter()
            .map(|(p, a)| (p.to_string(), a))
            .collect();
        config.services.insert("shop".into(), shop);
        let mut internal = ServiceConfig::new(vec![up.url.clone()]);
        internal.gateway = Access::Off;
        config.services.insert("internal".into(), internal);
        config.auth.users = Some(herald_testkit::auth::hs256(SECRET));
        config.auth.tokens = vec![
            StaticToken { name: "shop".into(), token: SHOP.into(), role: StaticRole::Service, services: None },
            StaticToken { name: "ops".into(), token: ADMIN.into(), role: StaticRole::Admin, services: None },
        ];
    };
    let wf = r#"
name = "order"
[[steps]]
name = "charge"
call = { service = "shop", path = "/charge" }
compensate = { service = "shop", path = "/refund" }
"#;
    let herald = herald_testkit::Herald::build().file("order.toml", wf).config(secure).start().await;
    (herald.base.clone(), herald)
}

/// The status of `GET {path}` with `token`, and what the instance saw.
async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{base}{path}")).header("herald-signature", "t=1,v2=forged");
    req = req.header("herald-subject", "mallory");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn calls(up: &Upstream) -> Value {
    reqwest::get(format!("{}/_calls", up.url)).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn each_path_admits_only_the_callers_its_access_names_on_both_lanes() {
    let up = Upstream::start("a");
    for express in [true, false] {
        let (base, _dir) = secured(&up, express).await;
        let (alice, shop, admin) = (user("alice"), Some(SHOP), Some(ADMIN));
        let alice = Some(alice.as_str());
        let table: &[(&str, Option<&str>, u16)] = &[
            ("/gw/shop/orders", None, 401),
            ("/gw/shop/orders", Some("not-a-token"), 401),
            ("/gw/shop/orders", alice, 403),
            ("/gw/shop/orders", shop, 200),
            ("/gw/shop/orders", admin, 200),
            ("/gw/shop/catalog/tea", None, 200),
            ("/gw/shop/catalogue", None, 401),
            ("/gw/shop/me/orders", None, 401),
            ("/gw/shop/me/orders", alice, 200),
            ("/gw/shop/admin/users", shop, 403),
            ("/gw/shop/admin/users", admin, 200),
            ("/gw/shop/charge", admin, 404),
            ("/gw/shop/charge/7", admin, 404),
            ("/gw/shop/ch%61rge", admin, 404),
            ("/gw/shop/refund", shop, 404),
            ("/gw/internal/anything", admin, 404),
        ];
        for (path, token, status) in table {
            let (got, _) = get(&base, path, *token).await;
            assert_eq!(got, *status, "GET {path} with {token:?}, express {express}");
        }
    }
    let seen = calls(&up).await;
    for never in ["/charge", "/charge/7", "/ch%61rge", "/refund", "/anything", "/catalogue", "/admin/users"] {
        let expected = if never == "/admin/users" { 2 } else { 0 };
        assert_eq!(seen[never].as_u64().unwrap_or(0), expected, "{never} reached the instance: {seen}");
    }
}

#[tokio::test]
async fn herald_takes_the_token_it_checks_and_names_the_caller_instead() {
    let up = Upstream::start("a");
    for express in [true, false] {
        let (base, _dir) = secured(&up, express).await;
        let (status, seen) = get(&base, "/gw/shop/orders", Some(SHOP)).await;
        assert_eq!(status, 200);
        let headers = &seen["headers"];
        assert_eq!(headers["herald-caller"], "service:shop", "express {express}: {headers}");
        for gone in ["authorization", "herald-signature", "herald-subject"] {
            assert!(headers.get(gone).is_none(), "express {express}: {gone} passed: {headers}");
        }
        let alice = user("alice");
        let (_, seen) = get(&base, "/gw/shop/me", Some(&alice)).await;
        assert_eq!(seen["headers"]["herald-caller"], "user:alice");

        // A public path is the instance's to guard: the token passes, herald's headers do not.
        let (status, seen) = get(&base, "/gw/shop/catalog", Some("the-client-s-own")).await;
        assert_eq!(status, 200);
        let headers = &seen["headers"];
        assert_eq!(headers["authorization"], "Bearer the-client-s-own");
        assert!(headers.get("herald-caller").is_none() && headers.get("herald-signature").is_none(), "{headers}");
    }
}

#[tokio::test]
async fn paths_with_dot_segments_or_encoded_slashes_are_refused_before_anything_is_sent() {
    let up = Upstream::start("a");
    for express in [true, false] {
        let (base, _dir) = secured(&up, express).await;
        let addr = base.trim_start_matches("http://");
        for path in [
            "/gw/shop/catalog/../admin/users",
            "/gw/shop/catalog/%2e%2e/admin/users",
            "/gw/shop/catalog/.%2E/charge",
            "/gw/x/../../v1/services",
            "/gw/shop/catalog/..%2fcharge",
            "/gw/shop/catalog//x",
            "/gw/shop/catalog/./x",
            "/gw/shop/catalog;x/../charge",
        ] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n");
            let answers = exchange(addr, request.as_bytes(), &["GET"]).await;
            let (status, headers, body) = &answers[0];
            let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            assert_eq!(*status, 400, "{path}, express {express}: {problem}");
            assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/problem+json"));
        }
    }
    let seen = calls(&up).await;
    assert!(seen.as_object().unwrap().keys().all(|k| k == "/_calls"), "something reached the instance: {seen}");
}
