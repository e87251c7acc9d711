use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "a-test-secret-of-at-least-32-characters";
pub const SERVICE: &str = "service-token-0123456789";
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIRVHSZR2T9sqN7qmZZyqNzMAzGEdrx1DfKJl0394fyy\n-----END PRIVATE KEY-----\n";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAAKLp9O3kDObJSVHdBvJh5a/QN8NWjWulJoyVkQeC1nk=\n-----END PUBLIC KEY-----\n";

fn jwt(sub: &str, exp_in_secs: i64, key: &jsonwebtoken::EncodingKey, alg: jsonwebtoken::Algorithm) -> String {
    let exp = chrono::Utc::now().timestamp() + exp_in_secs;
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &json!({"sub": sub, "exp": exp}), key).unwrap()
}

pub fn user(sub: &str) -> String {
    jwt(sub, 600, &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()), jsonwebtoken::Algorithm::HS256)
}

pub fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

pub async fn secured(algorithm: herald_server::config::JwtAlgorithm) -> (TestApp, StepService) {
    secured_with(algorithm, |_| {}).await
}

/// As [`secured`], with the configuration adjusted by `tweak` afterwards.
pub async fn secured_with(
    algorithm: herald_server::config::JwtAlgorithm,
    tweak: impl FnOnce(&mut herald_server::Config),
) -> (TestApp, StepService) {
    use herald_server::config::{StaticRole, StaticToken, UserTokens};
    let svc = StepService::start().await;
    let wf = sequential("order", &["a"], "subject = \"/user\"");
    let mut app = spawn_app_with(tempfile::tempdir().unwrap(), &[&wf], &svc, |c| {
        c.auth.users = Some(UserTokens {
            algorithm,
            secret: Some(SECRET.into()),
            public_key: Some(ED_PUBLIC.into()),
            issuer: None,
            audience: None,
        });
        c.auth.tokens =
            vec![StaticToken { name: "shop".into(), token: SERVICE.into(), role: StaticRole::Service, services: None }];
        tweak(c);
    })
    .await;
    app.token = Some(SERVICE.into());
    (app, svc)
}

pub async fn start_for(app: &TestApp, who: &str) -> String {
    let resp = app
        .http
        .post(app.url("/v1/workflows/order/operations"))
        .bearer_auth(SERVICE)
        .json(&json!({"user": who}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

async fn status_and_type(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or_default();
    (status, body["type"].as_str().unwrap_or_default().to_string())
}

fn ids(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_end_user_sees_only_their_own_operations_on_every_endpoint() {
    let (app, _svc) = secured(herald_server::config::JwtAlgorithm::HS256).await;
    let mine = start_for(&app, "alice").await;
    let theirs = start_for(&app, "bob").await;
    let alice = user("alice");
    let not_found = (404, "urn:herald:problem:not-found".to_string());

    let own = app.http.get(app.url(&format!("/v1/operations/{mine}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(own.status(), 200);
    let get = app.http.get(app.url(&format!("/v1/operations/{theirs}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(status_and_type(get).await, not_found, "another's operation does not exist for her");
    let events = app.url(&format!("/v1/operations/{theirs}/events"));
    for http in [&app.http, &fresh_client()] {
        let header = http.get(&events).bearer_auth(&alice).send().await.unwrap();
        assert_eq!(status_and_type(header).await, not_found);
        let query = http.get(format!("{events}?access_token={alice}")).send().await.unwrap();
        assert_eq!(status_and_type(query).await, not_found);
    }
    let own_events = fresh_client().get(app.url(&format!("/v1/operations/{mine}/events?access_token={alice}"))).send();
    assert_eq!(own_events.await.unwrap().status(), 200, "her own stream, with the token in the query");
    let cancel = app
        .http
        .post(app.url(&format!("/v1/operations/{theirs}:cancel")))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_type(cancel).await, not_found);

    for path in ["/v1/operations", "/v1/me/operations", "/v1/operations?subject=bob", "/v1/me/operations?subject=bob"] {
        let list: Value = app.http.get(app.url(path)).bearer_auth(&alice).send().await.unwrap().json().await.unwrap();
        assert_eq!(ids(&list), vec![mine.clone()], "{path}");
    }
    let all: Value =
        app.http.get(app.url("/v1/operations")).bearer_auth(SERVICE).send().await.unwrap().json().await.unwrap();
    assert_eq!(ids(&all).len(), 2, "a service sees every operation");

    let start =
        app.http.post(app.url("/v1/workflows/order/operations")).bearer_auth(&alice).json(&json!({"user": "alice"}));
    assert_eq!(status_and_type(start.send().await.unwrap()).await, (403, "urn:herald:problem:forbidden".into()));
    let me = app.http.get(app.url("/v1/me/operations")).bearer_auth(SERVICE).send().await.unwrap();
    assert_eq!(status_and_type(me).await, (403, "urn:herald:problem:forbidden".into()));
    for token in [SERVICE.to_string(), alice.clone()] {
        let letters = app.http.get(app.url("/v1/dead-letters")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(status_and_type(letters).await, (403, "urn:herald:problem:forbidden".into()), "admins only");
    }
}

#[tokio::test]
async fn missing_expired_forged_and_malformed_tokens_are_401_problems() {
    let (app, _svc) = secured(herald_server::config::JwtAlgorithm::HS256).await;
    let id = start_for(&app, "alice").await;
    let url = app.url(&format!("/v1/operations/{id}"));
    let unauthorized = (401, "urn:herald:problem:unauthorized".to_string());

    let none = app.http.get(&url).send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(status_and_type(none).await, unauthorized);
    let expired =
        jwt("alice", -3600, &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()), jsonwebtoken::Algorithm::HS256);
    let forged = jwt(
        "alice",
        600,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-xx"),
        jsonwebtoken::Algorithm::HS256,
    );
    for token in [expired.as_str(), forged.as_str(), "abc.def.ghi", "not-a-token"] {
        let resp = app.http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(status_and_type(resp).await, unauthorized, "{token}");
        let stream = fresh_client().get(format!("{url}/events?access_token={token}")).send().await.unwrap();
        assert_eq!(status_and_type(stream).await, unauthorized, "stream with {token}");
    }
    let start =
        app.http.post(app.url("/v1/workflows/order/operations")).json(&json!({"user": "x"})).send().await.unwrap();
    assert_eq!(status_and_type(start).await, unauthorized, "nothing starts without a token");
}

#[tokio::test]
async fn eddsa_user_tokens_are_checked_against_the_issuers_public_key() {
    let (app, _svc) = secured(herald_server::config::JwtAlgorithm::EdDSA).await;
    let id = start_for(&app, "alice").await;
    let url = app.url(&format!("/v1/operations/{id}"));
    let signed = jwt(
        "alice",
        600,
        &jsonwebtoken::EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
        jsonwebtoken::Algorithm::EdDSA,
    );

    assert_eq!(app.http.get(&url).bearer_auth(&signed).send().await.unwrap().status(), 200);
    assert_eq!(
        app.http.get(&url).bearer_auth(user("alice")).send().await.unwrap().status(),
        401,
        "an HS256 token is refused"
    );
}
