use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_happy_operation_runs_every_step_once_and_says_so() {
    let svc = StepService::start().await;
    let mut wf = sequential("order", &["reserve", "charge"], "");
    wf.push_str("[[steps]]\nparallel = [\"email\", \"analytics\"]\n");
    wf.push_str("[[steps]]\nname = \"email\"\ncall = { service = \"svc\", path = \"/email\" }\n");
    wf.push_str("[[steps]]\nname = \"analytics\"\ncall = { service = \"svc\", path = \"/analytics\" }\n");
    svc.on("/reserve", Reply::Json(json!({"reservation": "r1"})));
    let app = spawn_app(&[&wf], &svc).await;

    let resp = app
        .http
        .post(app.url("/v1/workflows/order/operations"))
        .header("prefer", "wait=10")
        .json(&json!({"customer": "alice"}))
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), 200, "finished within Prefer: wait");
    assert_eq!(resp.headers()["preference-applied"], "wait=10");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let op: serde_json::Value = resp.json().await.unwrap();
    let id = op["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/operations/{id}"));
    assert_eq!(op["status"], "succeeded");
    for s in ["reserve", "charge", "email", "analytics"] {
        assert_eq!(step(&op, s)["status"], "succeeded", "{s}");
        let calls = svc.calls(&format!("/{s}"));
        assert_eq!(calls.len(), 1, "{s} called once");
        assert_eq!(calls[0].key, format!("{id}/{s}"), "Idempotency-Key is <operation>/<step>");
        let tp: Vec<&str> = calls[0].traceparent.split('-').collect();
        assert_eq!(tp.len(), 4, "a W3C traceparent: {}", calls[0].traceparent);
        assert_eq!((tp[0], tp[1], tp[2].len(), tp[3]), ("00", &id[3..], 16, "01"), "the trace is the operation");
    }
    let charge = &svc.calls("/charge")[0].body;
    assert_eq!(charge["input"]["customer"], "alice");
    assert_eq!(charge["results"]["reserve"]["reservation"], "r1", "earlier results travel in the envelope");
    let types = event_types(&op);
    assert_eq!(types.first().unwrap(), "accepted");
    assert_eq!(types.last().unwrap(), "succeeded");
    let seqs: Vec<u64> = op["timeline"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "a gapless timeline");
    assert!(op["outcome"]["summary"].as_str().unwrap().contains("done"));
}

#[tokio::test]
async fn prefer_wait_answers_202_when_the_work_takes_longer() {
    let svc = StepService::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    svc.on("/slow", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let app = spawn_app(&[&sequential("order", &["slow"], "")], &svc).await;

    let started = std::time::Instant::now();
    let resp = app
        .http
        .post(app.url("/v1/workflows/order/operations"))
        .header("prefer", "wait=1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), 202, "not finished within the wait");
    assert!(started.elapsed() >= Duration::from_millis(900), "it did wait");
    let op: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(op["status"], "running");
    gate.add_permits(1);
    assert_eq!(app.wait_final(op["id"].as_str().unwrap()).await["status"], "succeeded");
}

#[tokio::test]
async fn prefer_return_minimal_answers_the_id_and_status_only() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["reserve"], "")], &svc).await;
    let start = |prefer: &'static str| {
        app.http.post(app.url("/v1/workflows/order/operations")).header("prefer", prefer).json(&json!({})).send()
    };

    let resp = start("return=minimal").await.unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["preference-applied"], "return=minimal");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let body: serde_json::Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/operations/{id}"));
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "status", "workflow"], "nothing but what is needed to follow it");
    assert_eq!(app.wait_final(&id).await["status"], "succeeded", "the operation itself is whole");

    let resp = start("wait=5, return=minimal").await.unwrap();
    assert_eq!(resp.status(), 200, "finished within the wait");
    assert_eq!(resp.headers()["preference-applied"], "wait=5, return=minimal");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "succeeded");
    assert!(body.get("steps").is_none() && body.get("timeline").is_none());
}

#[tokio::test]
async fn a_step_that_fails_twice_is_retried_and_every_attempt_shows() {
    let svc = StepService::start().await;
    svc.then("/charge", vec![Reply::Status(503, "busy"), Reply::Status(503, "busy")]);
    let app = spawn_app(&[&sequential("order", &["charge"], "")], &svc).await;

    let id = app.start_id("order", json!({})).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "succeeded");
    assert_eq!(step(&op, "charge")["attempts"], 3);
    assert_eq!(event_types(&op).iter().filter(|t| *t == "step_retrying").count(), 2);
    assert_eq!(svc.calls("/charge").len(), 3);
    assert!(svc.calls("/charge").iter().all(|c| c.key == format!("{id}/charge")), "every attempt carries the same key");
}

#[tokio::test]
async fn while_the_services_circuit_is_open_a_step_waits_without_spending_attempts() {
    let svc = StepService::start().await;
    svc.then("/charge", vec![Reply::Status(503, "busy"), Reply::Status(503, "busy")]);
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[&sequential("order", &["charge"], "")], &svc, |c| {
        let circuit = &mut c.services.get_mut("svc").unwrap().circuit;
        circuit.consecutive_failures = 2;
        circuit.open_for = herald_core::Span::from_millis(500);
    })
    .await;

    let id = app.start_id("order", json!({})).await;
    let op = app.wait_final(&id).await;

    // Two failures opened the circuit long before the 20 ms backoff ran
    // out; the third attempt waited for it instead of failing on it.
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(step(&op, "charge")["attempts"], 3);
    assert_eq!(svc.calls("/charge").len(), 3);
}

#[tokio::test]
async fn a_permanent_failure_undoes_completed_steps_in_reverse_and_tells_the_truth() {
    let svc = StepService::start().await;
    svc.on("/charge", Reply::Status(402, "Your card was declined."));
    let app = spawn_app(&[&sequential("order", &["reserve", "hold", "charge", "ship"], "")], &svc).await;

    let id = app.start_id("order", json!({})).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed");
    assert_eq!(svc.calls("/charge").len(), 1, "a 4xx is not retried");
    assert_eq!(step(&op, "reserve")["status"], "compensated");
    assert_eq!(step(&op, "hold")["status"], "compensated");
    assert_eq!(step(&op, "charge")["status"], "failed");
    assert_eq!(step(&op, "ship")["status"], "skipped");
    assert!(svc.calls("/ship").is_empty());
    let undo_order: Vec<String> =
        svc.all_calls().into_iter().filter(|c| c.path.ends_with("/undo")).map(|c| c.path).collect();
    assert_eq!(undo_order, vec!["/hold/undo", "/reserve/undo"], "reverse order of completion");
    assert_eq!(svc.calls("/hold/undo")[0].key, format!("{id}/hold/compensate"));
    assert_eq!(op["outcome"]["failed_step"], "charge");
    assert!(
        op["outcome"]["summary"]
            .as_str()
            .unwrap()
            .contains("charge failed (Your card was declined). Undone: hold done, reserve done."),
        "{}",
        op["outcome"]["summary"]
    );
    assert_eq!(op["needs_attention"], false);
}

#[tokio::test]
async fn a_compensation_that_keeps_failing_flags_the_operation_for_a_person() {
    let svc = StepService::start().await;
    svc.on("/charge", Reply::Status(400, "no"));
    svc.on("/reserve/undo", Reply::Status(500, "inventory is down"));
    let app = spawn_app(&[&sequential("order", &["reserve", "charge"], "")], &svc).await;

    let id = app.start_id("order", json!({})).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "failed");
    assert_eq!(op["needs_attention"], true);
    assert_eq!(step(&op, "reserve")["status"], "compensation_failed");
    assert_eq!(svc.calls("/reserve/undo").len(), 3, "compensation follows the retry policy");
    assert!(event_types(&op).contains(&"needs_attention".to_string()));
    assert_eq!(op["outcome"]["not_undone"][0]["needs_attention"], true);
}

#[tokio::test]
async fn cancel_undoes_what_was_done_and_a_second_cancel_is_a_conflict() {
    let svc = StepService::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    svc.on("/ship", Reply::Gate(gate.clone(), Box::new(Reply::Json(json!({})))));
    let app = spawn_app(&[&sequential("order", &["reserve", "ship"], "")], &svc).await;
    let id = app.start_id("order", json!({})).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "ship")["status"] == "running").await;

    let resp = app
        .http
        .post(app.url(&format!("/v1/operations/{id}:cancel")))
        .json(&json!({"reason": "changed my mind"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    gate.add_permits(1);
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "cancelled");
    assert_eq!(step(&op, "reserve")["status"], "compensated");
    assert_eq!(step(&op, "ship")["status"], "compensated", "the call in flight finished, then was undone");
    let again = app
        .http
        .post(app.url(&format!("/v1/operations/{id}:cancel")))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(again.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn get_supports_etags_and_list_pages_with_a_stable_cursor() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "subject = \"/customer\"")], &svc).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.start_id("order", json!({"customer": if i % 2 == 0 { "alice" } else { "bob" }})).await);
    }
    let op = app.wait_final(&ids[0]).await;

    let etag = format!("\"{}\"", op["last_seq"]);
    let resp = app
        .http
        .get(app.url(&format!("/v1/operations/{}", ids[0])))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);

    let page1: serde_json::Value =
        app.http.get(app.url("/v1/operations?limit=2")).send().await.unwrap().json().await.unwrap();
    let got1: Vec<&str> = page1["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(got1, vec![ids[4].as_str(), ids[3].as_str()], "newest first");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app.get_json(&format!("/v1/operations?limit=2&cursor={cursor}")).await;
    let got2: Vec<&str> = page2["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(got2, vec![ids[2].as_str(), ids[1].as_str()]);

    let alice: serde_json::Value =
        app.http.get(app.url("/v1/operations?subject=alice")).send().await.unwrap().json().await.unwrap();
    assert_eq!(alice["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let svc = StepService::start().await;
    let app = spawn_app(&[&sequential("order", &["a"], "")], &svc).await;
    let doc = app.get_json("/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/workflows/{name}/operations",
        "/v1/operations/{id}",
        "/v1/operations/{id}/events",
        "/v1/operations/{id}:cancel",
        "/v1/topics/{topic}/events",
        "/v1/subscriptions",
        "/v1/subscriptions/{name}",
        "/v1/subscriptions/{name}:pull",
        "/v1/subscriptions/{name}:ack",
        "/v1/subscriptions/{name}:nack",
        "/v1/dead-letters",
        "/v1/dead-letters/{id}",
        "/v1/dead-letters/{id}:redrive",
        "/v1/dead-letters:redrive",
        "/v1/clock",
        "/v1/ui/lag",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    for schema in ["TraceContext", "LagReport", "Clock"] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "{schema} is described");
    }
    // What every operation shares: a unique id, a description of each
    // answer, and each error answer a problem document.
    let mut ids = std::collections::HashSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, op) in operations.as_object().unwrap() {
            assert!(ids.insert(op["operationId"].as_str().unwrap()), "{method} {path}: its id is another's");
            for (status, answer) in op["responses"].as_object().unwrap() {
                assert!(!answer["description"].as_str().unwrap().is_empty(), "{method} {path} {status}");
                if status.as_str() >= "400" {
                    let problem = &answer["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(problem, "#/components/schemas/Problem", "{method} {path} {status}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_graceful_stop_lets_a_restarted_server_finish_the_work() {
    let svc = StepService::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    svc.then("/b", vec![Reply::Gate(gate.clone(), Box::new(Reply::Status(503, "stopping")))]);
    let wf = sequential("order", &["a", "b"], "");
    let app = spawn_app(&[&wf], &svc).await;
    let id = app.start_id("order", json!({})).await;
    app.wait_for(&id, Duration::from_secs(10), |op| step(op, "b")["status"] == "running").await;
    gate.add_permits(1);
    let dir = app.stop().await;

    let app = spawn_app_in(dir, &[&wf], &svc).await;
    let op = app.wait_final(&id).await;

    assert_eq!(op["status"], "succeeded");
    assert_eq!(svc.calls("/a").len(), 1, "a recorded result is never redone");
}

#[tokio::test]
async fn a_view_read_while_the_operation_moves_says_one_moment() {
    let svc = StepService::start().await;
    let steps: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = steps.iter().map(String::as_str).collect();
    let app = spawn_app(&[&sequential("many", &names, "")], &svc).await;
    let id = app.start_id("many", json!({})).await;
    let url = app.url(&format!("/v1/operations/{id}"));

    // Read as fast as it goes while the steps run: every answer's timeline
    // ends at the operation's own last event, and agrees with its status.
    let mut seen = 0;
    loop {
        let view: serde_json::Value = app.http.get(&url).send().await.unwrap().json().await.unwrap();
        let timeline = view["timeline"].as_array().unwrap();
        assert_eq!(timeline.last().unwrap()["seq"], view["last_seq"], "{view}");
        let ended =
            timeline.iter().any(|e| ["succeeded", "failed", "cancelled"].contains(&e["type"].as_str().unwrap()));
        assert_eq!(ended, view["status"] == "succeeded", "{view}");
        seen += 1;
        if ended {
            break;
        }
    }
    assert!(seen > 1, "read while it moved");
}
