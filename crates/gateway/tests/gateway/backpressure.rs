//! A service that sheds load is slowed down, not ejected; one whose every
//! call fails has its circuit opened, and herald answers for it without
//! calling; past its bulkhead a service gets no more requests at once.

use std::time::Duration;

use herald_testkit::eventually;

use super::{herald, shop, upstream::Upstream};

#[tokio::test]
async fn a_busy_instance_is_slowed_down_and_never_ejected() {
    let a = Upstream::start("a");
    a.set("busy", true).await;
    let h = herald(&[&a], |c| shop(c).max_in_flight = Some(50)).await;

    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(h.get("/gw/shop/who").await.status().as_u16());
    }

    assert!(statuses.iter().all(|s| *s == 503), "its own answers pass through: {statuses:?}");
    assert_eq!(a.calls().await["/who"], 30, "every request reached it: being busy is not being broken");
    let view = &h.services().await["items"][0];
    assert_eq!(view["circuit"]["state"], "closed", "{view}");
    assert!(view["instances"][0]["ejected_for_ms"].is_null(), "{view}");
    assert!(view["limit"].as_u64().unwrap() < 50, "herald lowered its limit: {view}");
}

#[tokio::test]
async fn a_service_whose_calls_keep_failing_has_its_circuit_opened_and_herald_answers_for_it() {
    let a = Upstream::start("a");
    a.set("fail", true).await;
    let h = herald(&[&a], |c| shop(c).circuit.open_for = herald_core::Span::from_millis(500)).await;

    let mut answers = Vec::new();
    for _ in 0..10 {
        let r = h.http.post(format!("{}/gw/shop/order", h.url)).send().await.unwrap();
        let retry_after = r.headers().get("retry-after").is_some();
        answers.push((r.status().as_u16(), retry_after));
    }

    let five_failed = [(500, false); 5];
    assert_eq!(answers[..5], five_failed, "the instance's own answers: {answers:?}");
    assert!(answers[5..].iter().all(|a| *a == (503, true)), "then herald's, with Retry-After: {answers:?}");
    assert_eq!(a.calls().await["/order"], 5, "an open circuit sends nothing");
    let view = &h.services().await["items"][0];
    assert_eq!(view["circuit"]["state"], "open", "{view}");
    assert_eq!(view["circuit"]["reason"], "5 calls in a row failed", "{view}");
    assert!(view["instances"][0]["ejected_for_ms"].is_null(), "the only instance is never ejected: {view}");

    // Recovered: the probes go through once the circuit's time is up, and close it.
    a.set("fail", false).await;
    eventually("the circuit closed", Duration::from_secs(5), async || {
        let (status, _) = h.instance_of("/gw/shop/who").await;
        (status == 200 && h.services().await["items"][0]["circuit"]["state"] == "closed").then_some(())
    })
    .await;
}

#[tokio::test]
async fn past_its_bulkhead_a_service_gets_no_more_requests_at_once() {
    let a = Upstream::start("a");
    a.set("slow", true).await;
    let h = herald(&[&a], |c| shop(c).max_in_flight = Some(2)).await;

    let five = futures::future::join_all((0..5).map(|_| h.instance_of("/gw/shop/who"))).await;

    let mut statuses: Vec<u16> = five.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 503, 503, 503], "two went through, three were held back");
    assert_eq!(a.calls().await["/who"], 2);
}

#[tokio::test]
async fn a_burst_past_the_bulkhead_waits_its_turn_instead_of_being_refused() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |c| shop(c).max_in_flight = Some(1)).await;

    let burst = futures::future::join_all((0..8).map(|_| h.instance_of("/gw/shop/who"))).await;

    assert!(burst.iter().all(|(s, _)| *s == 200), "each took its turn: {burst:?}");
    assert_eq!(a.calls().await["/who"], 8);
}
