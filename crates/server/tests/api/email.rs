use std::time::Duration;

use herald_demo::smtp::SmtpSink;
use herald_server::config::EmailConfig;
use serde_json::json;

use crate::helpers::*;

const ADDRESS: &str = "alice.gdpr@example.com";

async fn app_with_email(port: u16) -> TestApp {
    app_with_email_retry(port, None).await
}

async fn app_with_email_retry(port: u16, retry: Option<herald_core::workflow::raw::RawRetry>) -> TestApp {
    let svc = StepService::start().await;
    let extra = "subject = \"/user_id\"\nretention = { redact = [\"email\"] }\n[notify]\non = [\"accepted\", \"succeeded\"]\nchannels = [\"inbox\", \"email\"]\nemail_to = \"/email\"";
    let wf = sequential("forget-me", &["erase"], extra);
    spawn_app_with(tempfile::tempdir().unwrap(), &[&wf], &svc, |c| {
        c.email = Some(EmailConfig { retry, ..local_mail_server(port) })
    })
    .await
}

#[tokio::test]
async fn the_final_email_reaches_a_real_smtp_server_and_then_the_address_is_erased_from_disk() {
    let sink = SmtpSink::start(0).await.unwrap();
    let app = app_with_email(sink.port).await;
    let id = app.start_id("forget-me", json!({"user_id": "u1", "email": ADDRESS})).await;
    app.wait_final(&id).await;

    let mails = eventually("the emails arrived", Duration::from_secs(10), async || {
        let mails = sink.mails();
        if mails.len() >= 2 { Ok(mails) } else { Err(format!("{mails:?}")) }
    })
    .await;
    assert!(mails.iter().all(|m| m.to == vec![ADDRESS.to_string()] && m.from == "noreply@herald.test"));
    let last = mails.iter().find(|m| m.data.contains("Subject: Test run: done")).expect("the final email");
    assert!(last.data.contains("Test run: done."), "{}", last.data);

    let op = app.wait_for(&id, Duration::from_secs(10), |op| op["redacted"] == json!(["email"])).await;
    assert!(op["input"].get("email").is_none(), "the stored input no longer has it");
    assert_eq!(op["input"]["user_id"], "u1", "the rest stays");
    assert!(event_types(&op).contains(&"redacted".to_string()), "the timeline says so");

    // The address is gone from the store: from every file of its
    // directory, log included, or from every row of its schema.
    eventually("the address gone from the store", Duration::from_secs(10), async || {
        let found = kept_in_store(&app, ADDRESS).await;
        if found.is_empty() { Ok(()) } else { Err(format!("still in {found:?}")) }
    })
    .await;
}

/// Where herald's store still holds `text`: the files of its data
/// directory on SQLite, the tables of its schema on PostgreSQL.
async fn kept_in_store(app: &TestApp, text: &str) -> Vec<String> {
    match crate::BACKEND {
        Backend::Sqlite => std::fs::read_dir(app.dir.path().join("data"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| std::fs::read(path).unwrap().windows(text.len()).any(|w| w == text.as_bytes()))
            .map(|path| path.display().to_string())
            .collect(),
        Backend::Postgres => {
            use sqlx::Connection;
            let mut db = sqlx::PgConnection::connect(&app.store.as_ref().unwrap().url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(&mut db)
            .await
            .unwrap();
            let mut found = Vec::new();
            for table in tables {
                let rows = format!("SELECT count(*) FROM {table} AS r WHERE r::text LIKE $1");
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(rows))
                    .bind(format!("%{text}%"))
                    .fetch_one(&mut db)
                    .await
                    .unwrap();
                if n > 0 {
                    found.push(table);
                }
            }
            found
        }
    }
}

#[tokio::test]
async fn the_whole_input_is_erased_once_keep_input_for_has_passed_after_the_end() {
    let svc = StepService::start().await;
    let wf = sequential("w", &["a"], "retention = { keep_input_for = \"1s\" }");
    let app = spawn_app(&[&wf], &svc).await;
    let id = app.start_id("w", json!({"name": "Alice", "phone": "+1 555 0100"})).await;

    let ended = app.wait_final(&id).await;
    assert_eq!(ended["input"]["name"], "Alice", "kept while the operation runs and just after");
    let op = app.wait_for(&id, Duration::from_secs(10), |op| op["input"] == json!({})).await;

    let mut erased: Vec<String> = serde_json::from_value(op["redacted"].clone()).unwrap();
    erased.sort();
    assert_eq!(erased, vec!["name", "phone"]);
    assert!(event_types(&op).contains(&"redacted".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_to_a_mail_server_that_refuses_connections_wait_and_spend_no_attempt() {
    let port = free_port(); // refused until the mail server starts
    let retry = herald_core::workflow::raw::RawRetry {
        attempts: Some(2),
        initial: Some(herald_core::Span::from_millis(30)),
        max: Some(herald_core::Span::from_millis(60)),
        ..Default::default()
    };
    let app = app_with_email_retry(port, Some(retry)).await;
    for i in 0..5 {
        let id = app.start_id("forget-me", json!({"user_id": format!("u{i}"), "email": ADDRESS})).await;
        app.wait_final(&id).await;
    }

    // Down for three seconds, far past two attempts 30 ms apart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]), "nothing buried while it was down");
    let sink = SmtpSink::start(port).await.unwrap();

    eventually("10 emails arrived", Duration::from_secs(15), async || {
        let arrived = sink.mails().len();
        if arrived >= 10 { Ok(()) } else { Err(format!("{arrived} of 10")) }
    })
    .await;
    assert_eq!(sink.mails().len(), 10, "accepted and done, for each of the five");
    assert_eq!(app.get_json("/v1/dead-letters").await["items"], json!([]));
}

#[tokio::test]
async fn an_email_is_written_in_its_users_language_and_says_which() {
    let sink = SmtpSink::start(0).await.unwrap();
    let svc = StepService::start().await;
    let wf = "name = \"order\"\nlanguages = [\"en\", \"de\"]\nlanguage_from = \"/lang\"\nsubject = \"/user_id\"\n\
              label = { en = \"Your order\", de = \"Ihre Bestellung\" }\n\
              [notify]\non = [\"succeeded\"]\nchannels = [\"email\"]\nemail_to = \"/email\"\n\
              [[steps]]\nname = \"ship\"\nlabel = { en = \"Shipping\", de = \"Versand\" }\n\
              done_label = { en = \"Shipped\", de = \"Verschickt\" }\ncall = { service = \"svc\", path = \"/ship\" }\n";
    let app =
        spawn_app_with(tempfile::tempdir().unwrap(), &[wf], &svc, |c| c.email = Some(local_mail_server(sink.port)))
            .await;
    let id = app.start_id("order", json!({"user_id": "u1", "email": ADDRESS, "lang": "de"})).await;
    app.wait_final(&id).await;

    let mail = eventually("the email arrived", Duration::from_secs(10), async || {
        sink.mails().into_iter().next().ok_or("no email yet")
    })
    .await;
    assert!(mail.data.contains("Subject: Ihre Bestellung: erledigt"), "{}", mail.data);
    assert!(mail.data.contains("Content-Language: de"), "{}", mail.data);
    assert!(mail.data.contains("Ihre Bestellung: erledigt. Verschickt."), "{}", mail.data);
}
