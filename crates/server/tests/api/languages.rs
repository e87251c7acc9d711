//! Every language: an operation speaks the language its user reads —
//! chosen at the start from the workflow's `language_from` pointer into
//! the input, else `Accept-Language` — and is told again in another its
//! workflow offers to a reader who asks (an end user's `lang` claim,
//! `Accept-Language`).

use herald_server::config::{StaticRole, StaticToken};
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "a-test-secret-of-at-least-32-characters";
const SHOP: &str = "shop-token-0123456789";

const ORDER: &str = r#"
name = "order"
languages = ["en", "de", "fr"]
language_from = "/locale"
subject = "/user"
label = { en = "Your order", de = "Ihre Bestellung", fr = "Votre commande" }
[[steps]]
name = "charge"
label = { en = "Charging your card", de = "Karte wird belastet", fr = "Débit de votre carte" }
done_label = { en = "Card charged", de = "Karte belastet", fr = "Carte débitée" }
call = { service = "svc", path = "/charge" }
"#;

async fn app(svc: &StepService) -> TestApp {
    let mut app = spawn_app_with(tempfile::tempdir().unwrap(), &[ORDER], svc, |c| {
        c.auth.users = Some(herald_testkit::auth::hs256(SECRET));
        c.auth.tokens =
            vec![StaticToken { name: "shop".into(), token: SHOP.into(), role: StaticRole::Service, services: None }];
    })
    .await;
    app.token = Some(SHOP.into());
    app
}

async fn start(app: &TestApp, input: Value, accept_language: Option<&str>) -> String {
    let mut req = app.http.post(app.url("/v1/workflows/order/operations")).bearer_auth(SHOP).json(&input);
    if let Some(l) = accept_language {
        req = req.header("accept-language", l);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    app.wait_final(&id).await;
    id
}

async fn read(
    app: &TestApp,
    id: &str,
    token: &str,
    accept_language: Option<&str>,
) -> (Value, reqwest::header::HeaderMap) {
    let mut req = app.http.get(app.url(&format!("/v1/operations/{id}"))).bearer_auth(token);
    if let Some(l) = accept_language {
        req = req.header("accept-language", l);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    (resp.json().await.unwrap(), headers)
}

fn messages(op: &Value) -> Vec<String> {
    op["timeline"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_operation_speaks_the_language_its_start_asked_for() {
    let svc = StepService::start().await;
    svc.on("/charge", Reply::Json(json!({})));
    let app = app(&svc).await;

    let id = start(&app, json!({"user": "u1"}), Some("de-AT, de;q=0.9, en;q=0.5")).await;
    let (op, _) = read(&app, &id, SHOP, None).await;
    assert_eq!(op["lang"], "de");
    assert_eq!(op["label"], "Ihre Bestellung");
    assert_eq!(step(&op, "charge")["label"], "Karte wird belastet");
    assert_eq!(op["outcome"]["summary"], "Ihre Bestellung: erledigt. Karte belastet.");
    assert_eq!(
        messages(&op),
        [
            "Anfrage erhalten",
            "Gestartet",
            "Karte wird belastet",
            "Karte belastet",
            "Ihre Bestellung: erledigt. Karte belastet."
        ]
    );

    // The input's pointer goes before the header; an unknown language falls back to the first.
    let id = start(&app, json!({"user": "u1", "locale": "fr"}), Some("de")).await;
    assert_eq!(read(&app, &id, SHOP, None).await.0["outcome"]["summary"], "Votre commande : terminé. Carte débitée.");
    let id = start(&app, json!({"user": "u1"}), Some("sv, ja")).await;
    assert_eq!(read(&app, &id, SHOP, None).await.0["label"], "Your order");
}

#[tokio::test]
async fn a_reader_is_told_an_operation_in_their_own_language() {
    let svc = StepService::start().await;
    svc.on("/charge", Reply::Json(json!({})));
    let app = app(&svc).await;
    let id = start(&app, json!({"user": "u1"}), None).await;

    let (english, headers) = read(&app, &id, SHOP, None).await;
    assert_eq!(english["outcome"]["summary"], "Your order: done. Card charged.");
    let english_tag = headers["etag"].to_str().unwrap().to_string();
    assert!(headers["vary"].to_str().unwrap().contains("accept-language"));

    let (german, headers) = read(&app, &id, SHOP, Some("de")).await;
    assert_eq!(german["label"], "Ihre Bestellung");
    assert_eq!(german["timeline"][0]["message"], "Anfrage erhalten");
    assert_eq!(german["outcome"]["summary"], "Ihre Bestellung: erledigt. Karte belastet.");
    assert_ne!(headers["etag"].to_str().unwrap(), english_tag, "each language is its own representation");

    // An end user's token names their language; it goes before the browser's.
    let token = herald_testkit::auth::hs256_jwt(
        SECRET,
        &json!({"sub": "u1", "lang": "fr", "exp": chrono::Utc::now().timestamp() + 600}),
    );
    let (french, _) = read(&app, &id, &token, Some("de")).await;
    assert_eq!(french["outcome"]["summary"], "Votre commande : terminé. Carte débitée.");
    assert_eq!(messages(&french)[0], "Demande reçue");
    let listed = app.http.get(app.url("/v1/me/operations")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(listed.json::<Value>().await.unwrap()["items"][0]["label"], "Votre commande");

    // The workflow's own texts, too.
    let wf: Value = app
        .http
        .get(app.url("/v1/workflows/order"))
        .bearer_auth(SHOP)
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((wf["label"].as_str(), wf["languages"].clone()), (Some("Votre commande"), json!(["en", "de", "fr"])));
}

/// A service's `detail` is shown to the user, so a step is called in its
/// operation's language; and when the service gives no words a person can
/// read, herald's own about the call are in that language too.
#[tokio::test]
async fn a_step_is_called_in_its_operations_language_and_herald_says_in_it_what_went_wrong() {
    let svc = StepService::start().await;
    svc.on("/charge", Reply::JsonStatus(422, json!({"trace": "at charge.rs:12"})));
    let app = app(&svc).await;

    let id = start(&app, json!({"user": "u1"}), Some("de-DE, de;q=0.9")).await;
    let call = svc.calls("/charge").remove(0);
    assert_eq!((call.accept_language.as_str(), &call.body["lang"]), ("de", &json!("de")));
    let (op, _) = read(&app, &id, SHOP, None).await;
    assert_eq!(step(&op, "charge")["error"], "der Dienst antwortete mit 422 Unprocessable Entity");
    assert_eq!(
        op["outcome"]["summary"],
        "Ihre Bestellung ist nicht zustande gekommen: Karte wird belastet ist fehlgeschlagen \
         (der Dienst antwortete mit 422 Unprocessable Entity)."
    );

    start(&app, json!({"user": "u2", "locale": "fr"}), None).await;
    assert_eq!(svc.calls("/charge").last().unwrap().accept_language, "fr");
}
