use serde_json::{Value, json};

use crate::helpers::*;

async fn problem(resp: reqwest::Response, status: u16, kind: &str) {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:herald:problem:{kind}"), "{body}");
    assert_eq!(body["status"], status);
    assert!(!body["detail"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_get_clear_problems_and_store_nothing() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "subject = \"/customer\"")], &svc).await;
    let start = app.url("/v1/workflows/order/operations");
    let post =
        |body: &'static str, ct: &'static str| app.http.post(&start).header("content-type", ct).body(body).send();

    problem(post("{not json", "application/json").await.unwrap(), 400, "invalid-json").await;
    problem(post("[1, 2]", "application/json").await.unwrap(), 422, "invalid-input").await;
    problem(post("{\"customer\": 42.5e400}", "application/json").await.unwrap(), 400, "invalid-json").await;
    problem(post("{\"nobody\": 1}", "application/json").await.unwrap(), 422, "invalid-input").await;
    problem(post("{}", "text/plain").await.unwrap(), 415, "unsupported-media-type").await;
    // Nested deeper than herald could read back once stored (126 levels
    // was accepted, then broke every list): refused, at the edge.
    let deep = |levels: usize| format!("{{\"customer\": \"c\", \"x\": {}1{}}}", "[".repeat(levels), "]".repeat(levels));
    let send = |body: String| app.http.post(&start).header("content-type", "application/json").body(body).send();
    problem(send(deep(126)).await.unwrap(), 422, "invalid-input").await;
    problem(send(deep(64)).await.unwrap(), 422, "invalid-input").await;
    let deep_event = format!(
        "{{\"specversion\": \"1.0\", \"id\": \"e\", \"source\": \"/s\", \"type\": \"T\", \"data\": {}1{}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let publish =
        app.http.post(app.url("/v1/topics/orders/events")).header("content-type", "application/cloudevents+json");
    problem(publish.body(deep_event).send().await.unwrap(), 422, "invalid-event").await;
    let big = format!("{{\"customer\": \"{}\"}}", "x".repeat(100 * 1024));
    problem(
        app.http.post(&start).header("content-type", "application/json").body(big).send().await.unwrap(),
        413,
        "payload-too-large",
    )
    .await;
    problem(app.start("nope", json!({})).await, 404, "unknown-workflow").await;
    problem(app.http.get(app.url("/v1/operations/op_123")).send().await.unwrap(), 404, "not-found").await;
    problem(app.http.get(app.url("/v1/operations?status=sleeping")).send().await.unwrap(), 422, "invalid-input").await;
    problem(app.http.get(app.url("/v1/operations?limit=0")).send().await.unwrap(), 422, "invalid-input").await;
    problem(app.http.get(app.url("/no/such/thing")).send().await.unwrap(), 404, "not-found").await;
    // The framework's own rejections come as problems too.
    problem(app.http.get(app.url("/v1/operations/%FF")).send().await.unwrap(), 400, "bad-request").await;
    problem(app.http.delete(app.url("/v1/operations")).send().await.unwrap(), 405, "method-not-allowed").await;
    let events = app.url("/v1/operations/op_0193aaaaaaaaaaaaaaaaaaaaaaaaaaaa/events?after=abc");
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    for http in [&app.http, &fresh] {
        problem(http.get(&events).send().await.unwrap(), 400, "bad-request").await;
    }

    let list: Value = app.http.get(app.url("/v1/operations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing was stored");
    assert!(svc.all_calls().is_empty(), "no step was called");
}

/// A method a resource does not take is 405, saying which it takes, before
/// any other check: a PUT without a JSON content type was 415 (the JSON
/// check ran before routing), and an action (`{id}:cancel`) answered other
/// methods for the resource it acts on.
#[tokio::test]
async fn a_method_a_resource_does_not_take_is_405_naming_the_ones_it_does() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    let id = app.start_id("order", json!({})).await;
    let send = |method: &str, path: &str| {
        app.http.request(method.parse().unwrap(), app.url(path)).header("content-type", "text/plain").send()
    };
    let allowed = |resp: &reqwest::Response| resp.headers()["allow"].to_str().unwrap().to_string();

    let resp = send("PUT", "/v1/clock").await.unwrap();
    assert_eq!(allowed(&resp), "GET,HEAD");
    problem(resp, 405, "method-not-allowed").await;
    problem(send("POST", "/v1/no/such/thing").await.unwrap(), 404, "not-found").await;
    for method in ["GET", "OPTIONS", "DELETE"] {
        let resp = send(method, &format!("/v1/operations/{id}:cancel")).await.unwrap();
        assert_eq!(allowed(&resp), "POST", "{method}");
        problem(resp, 405, "method-not-allowed").await;
    }
    // The resource an action acts on takes no POST of its own, whatever it is sent.
    for (path, methods) in [
        (format!("/v1/operations/{id}"), "GET, HEAD"),
        ("/v1/subscriptions/orders".to_string(), "GET, HEAD, PUT, DELETE"),
        ("/v1/dead-letters/1".to_string(), "GET, HEAD, DELETE"),
    ] {
        for method in ["POST", "PATCH"] {
            let resp = send(method, &path).await.unwrap();
            assert_eq!(allowed(&resp), methods, "{method} {path}");
            problem(resp, 405, "method-not-allowed").await;
        }
    }
    // A `:` of a name's own comes encoded, and is no action.
    problem(app.http.get(app.url("/v1/operations/op%3Acancel")).send().await.unwrap(), 404, "not-found").await;
    // The action itself still takes a POST.
    let cancel = app.http.post(app.url(&format!("/v1/operations/{id}:cancel"))).json(&json!({})).send();
    assert_ne!(cancel.await.unwrap().status(), 405);
}

#[test]
fn invalid_workflow_files_are_refused_naming_the_step_and_field() {
    let config = {
        let mut c = herald_server::Config::default();
        c.services.insert("svc".into(), herald_server::config::ServiceConfig::new(vec!["http://127.0.0.1:1".into()]));
        c
    };
    let check = |text: &str| {
        herald_server::workflows::parse_checked("bad.toml", text, &config.services).unwrap_err().to_string()
    };

    let e = check(
        "name = \"w\"\n[[steps]]\nname = \"a\"\ncall = { service = \"svc\", path = \"/a\" }\nretry = { attempts = 0 }\n",
    );
    assert!(e.contains("bad.toml") && e.contains("step `a`") && e.contains("retry.attempts"), "{e}");
    let e = check("name = \"w\"\n[[steps]]\nname = \"a\"\ncall = { service = \"nowhere\", path = \"/a\" }\n");
    assert!(e.contains("nowhere"), "{e}");
    let e = check(
        "name = \"w\"\n[[steps]]\nname = \"a\"\ncall = { service = \"svc\", path = \"/a\" }\ntimeout = \"soon\"\n",
    );
    assert!(e.contains("not a duration"), "{e}");
    let e = check("name = \"w\"\n[[steps]]\nname = \"a\"\ncall = { service = \"svc\", path = \"/a\" }\ncolour = 1\n");
    assert!(e.contains("colour"), "{e}");
    let e = check("name = \"w\"\n[[steps]]\nparallel = [\"ghost\"]\n");
    assert!(e.contains("ghost"), "{e}");
}

#[tokio::test]
async fn a_step_answer_nested_too_deep_to_read_back_fails_the_step_and_breaks_no_list() {
    let svc = StepService::start().await;
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    svc.on("/a", Reply::Json(deep));
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;

    let id = app.start_id("order", json!({})).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed", "{op:#}");
    assert!(step(&op, "a")["error"].as_str().unwrap().contains("cannot be kept"), "{op:#}");
    let list = app.http.get(app.url("/v1/operations")).send().await.unwrap();
    assert_eq!(list.status(), 200, "every operation can still be read");
}

#[tokio::test]
async fn a_step_answer_larger_than_a_mebibyte_fails_the_step_and_is_not_kept() {
    let svc = StepService::start().await;
    svc.on("/a", Reply::Json(json!({ "blob": "x".repeat(2 * 1024 * 1024) })));
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;

    let id = app.start_id("order", json!({})).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed", "{op:#}");
    let a = step(&op, "a");
    assert!(a["error"].as_str().unwrap().contains("larger than 1024 KiB"), "{a}");
    assert!(a["result"].is_null(), "nothing of it kept");
}

// They break rows in place through herald's SQLite file.
sqlite_only! {
    use std::time::Duration;

    #[tokio::test]
    async fn an_operation_whose_stored_row_cannot_be_read_is_left_out_and_its_task_set_aside() {
        let svc = StepService::start().await;
        svc.on("/a", Reply::Status(500, "down"));
        svc.on("/b", Reply::Json(json!({})));
        let wf = |name: &str, step: &str| {
            format!(
                "name = \"{name}\"\n[[steps]]\nname = \"{step}\"\ncall = {{ service = \"svc\", path = \"/{step}\" }}\n\
                 retry = {{ attempts = 50, initial = \"300ms\", max = \"300ms\" }}\n"
            )
        };
        let app = spawn_app(&[&wf("broken", "a"), &wf("fine", "b")], &svc).await;
        let broken = app.start_id("broken", json!({})).await;
        let fine = app.start_id("fine", json!({})).await;
        app.wait_final(&fine).await;
        app.wait_for(&broken, Duration::from_secs(10), |op| op["steps"][0]["attempts"].as_u64() >= Some(1)).await;

        // A row no version of herald could have written, as a broken disk might.
        let db = rusqlite::Connection::open(app.dir.path().join("data/herald.db")).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db.execute("UPDATE operations SET state = '{\"id\": ' WHERE id = ?1", [&broken]).unwrap();

        let list = app.http.get(app.url("/v1/operations")).send().await.unwrap();
        assert_eq!(list.status(), 200, "one unreadable row does not break the list");
        let ids: Vec<String> = list.json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, vec![fine]);
        let one = app.http.get(app.url(&format!("/v1/operations/{broken}"))).send().await.unwrap();
        assert_eq!(one.status(), 500);
        assert_eq!(one.headers()["content-type"], "application/problem+json");

        // Its task is set aside for an hour instead of failing at every turn.
        eventually("the task set aside", Duration::from_secs(10), async || {
            let due: i64 =
                db.query_row("SELECT MIN(due_at) FROM tasks WHERE op_id = ?1", [&broken], |r| r.get(0)).unwrap();
            (due > chrono::Utc::now().timestamp_millis() + 30 * 60 * 1000).then_some(())
        })
        .await;
        let calls = svc.calls("/a").len();
        let still = app.start_id("fine", json!({})).await;
        app.wait_final(&still).await;
        assert!(svc.calls("/a").len() <= calls + 1, "the broken operation's step is not called again");
    }

    #[tokio::test]
    async fn a_stored_task_that_cannot_be_read_does_not_stop_the_others() {
        let svc = StepService::start().await;
        svc.on("/a", Reply::Status(500, "down"));
        svc.then("/b", vec![Reply::Status(500, "once")]);
        svc.on("/b", Reply::Json(json!({})));
        let wf = |name: &str, step: &str| {
            format!(
                "name = \"{name}\"\n[[steps]]\nname = \"{step}\"\ncall = {{ service = \"svc\", path = \"/{step}\" }}\n\
                 retry = {{ attempts = 50, initial = \"1s\", max = \"1s\" }}\n"
            )
        };
        let (broken_wf, fine_wf) = (wf("broken", "a"), wf("fine", "b"));
        let app = spawn_app(&[&broken_wf, &fine_wf], &svc).await;
        let broken = app.start_id("broken", json!({})).await;
        let fine = app.start_id("fine", json!({})).await;
        for id in [&broken, &fine] {
            app.wait_for(id, Duration::from_secs(10), |op| op["steps"][0]["status"] == "retrying").await;
        }
        let dir = app.stop().await;
        let db = rusqlite::Connection::open(dir.path().join("data/herald.db")).unwrap();
        let changed = db.execute("UPDATE tasks SET kind = 'not a task' WHERE op_id = ?1", [&broken]).unwrap();
        assert_eq!(changed, 1, "the broken operation's retry is one stored task");
        // Both retries due by the restart, so they are claimed together.
        let due: i64 = db.query_row("SELECT MAX(due_at) FROM tasks", [], |r| r.get(0)).unwrap();
        while chrono::Utc::now().timestamp_millis() <= due {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(db);

        let app = spawn_app_in(dir, &[&broken_wf, &fine_wf], &svc).await;
        let op = app.wait_final(&fine).await;

        assert_eq!(op["status"], "succeeded");
        assert_eq!(svc.calls("/b").len(), 2);
    }
}
