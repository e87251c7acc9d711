//! The gateway against real upstream processes on loopback: balancing,
//! an instance killed mid-test, timeouts and circuit breakers, safe
//! retries, TTL expiry, rate limits, streaming, the headers it adds, and
//! the connections it keeps to instances.

mod access;
mod backpressure;
mod connections;
mod express;
mod smuggling;
mod upstream;

use std::{collections::BTreeMap, time::Duration};

use herald_server::{Config, config::ServiceConfig};
use herald_testkit::eventually;
use serde_json::{Value, json};
use upstream::Upstream;

/// The child process of [`Upstream`]: ignored in a normal run, so it is
/// not counted as a test that passed.
#[tokio::test]
#[ignore = "a child process's entry point: run, with `--ignored`, by the test that spawns it"]
async fn upstream_process() {
    upstream::serve_as_child().await;
}

struct Herald {
    url: String,
    http: reqwest::Client,
    _herald: herald_testkit::Herald,
}

/// herald with the service `shop` on these upstreams, `tweak`ed.
async fn herald(instances: &[&Upstream], tweak: impl FnOnce(&mut Config)) -> Herald {
    let shop = ServiceConfig::new(instances.iter().map(|u| u.url.clone()).collect());
    let with_shop = |c: &mut Config| {
        c.services.insert("shop".into(), shop);
    };
    let h = herald_testkit::Herald::build().config(with_shop).config(tweak).start().await;
    Herald { url: h.base.clone(), http: h.http.clone(), _herald: h }
}

impl Herald {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.url)).send().await.unwrap()
    }

    async fn instance_of(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        (status, body["instance"].as_str().unwrap_or("").to_string())
    }

    /// Which instance answered each of `n` GETs sent at once.
    async fn who_answers(&self, n: usize) -> Vec<String> {
        let gets = futures::future::join_all((0..n).map(|_| self.instance_of("/gw/shop/who"))).await;
        gets.into_iter().map(|(_, w)| w).collect()
    }

    async fn services(&self) -> Value {
        self.http.get(format!("{}/v1/services", self.url)).send().await.unwrap().json().await.unwrap()
    }
}

fn shop(config: &mut Config) -> &mut ServiceConfig {
    config.services.get_mut("shop").unwrap()
}

#[tokio::test]
async fn round_robin_spreads_requests_over_every_instance() {
    let (a, b, c) = (Upstream::start("a"), Upstream::start("b"), Upstream::start("c"));
    let h = herald(&[&a, &b, &c], |_| {}).await;

    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..30 {
        let (status, who) = h.instance_of("/gw/shop/who").await;
        assert_eq!(status, 200);
        *seen.entry(who).or_default() += 1;
    }

    assert_eq!(seen, BTreeMap::from([("a".into(), 10), ("b".into(), 10), ("c".into(), 10)]));
}

#[tokio::test]
async fn an_instance_killed_mid_test_is_routed_around_without_a_failed_idempotent_request() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let mut c = Upstream::start("c");
    let h = herald(&[&a, &b, &c], |_| {}).await;

    // 300 GETs, five at a time; the third instance dies after the first 60.
    let mut statuses = Vec::new();
    for batch in 0..60 {
        if batch == 12 {
            c.kill(); // SIGKILL: its connections die, new ones are refused
        }
        let five = (0..5).map(|_| h.instance_of("/gw/shop/who"));
        statuses.extend(futures::future::join_all(five).await);
    }

    let failed: Vec<&(u16, String)> = statuses.iter().filter(|(s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "every GET answered: {failed:?}");
    let late: Vec<&String> = statuses[100..].iter().map(|(_, who)| who).collect();
    assert!(!late.iter().any(|w| *w == "c"), "the killed instance answers nothing after its death");
    let services = h.services().await;
    let ejected_c = services["items"][0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["url"] == c.url.as_str())
        .unwrap()["ejected_for_ms"]
        .clone();
    assert!(ejected_c.is_u64(), "it was ejected: {services}");
    assert_eq!(services["items"][0]["circuit"]["state"], "closed", "the service itself is fine: {services}");
}

#[tokio::test]
async fn a_slow_instance_trips_its_timeout_and_circuit_while_the_others_keep_serving() {
    let (slow, fast) = (Upstream::start("slow"), Upstream::start("fast"));
    slow.set("slow", true).await;
    let h = herald(&[&slow, &fast], |c| {
        shop(c).timeout = Some(herald_core::Span::from_millis(300));
    })
    .await;

    // POSTs without an Idempotency-Key are never retried: those sent to the
    // slow instance end in a 504 until its circuit opens.
    let mut answers = Vec::new();
    for _ in 0..20 {
        let r = h.http.post(format!("{}/gw/shop/order", h.url)).body("{}").send().await.unwrap();
        answers.push(r.status().as_u16());
    }
    let timeouts = answers.iter().filter(|s| **s == 504).count();

    assert_eq!(timeouts, 5, "five timeouts open the slow instance's circuit: {answers:?}");
    assert!(answers[answers.len() - 8..].iter().all(|s| *s == 200), "then the fast one takes everything: {answers:?}");
    let gets = futures::future::join_all((0..6).map(|_| h.instance_of("/gw/shop/who"))).await;
    assert!(gets.iter().all(|(s, who)| *s == 200 && who == "fast"));
}

#[tokio::test]
async fn an_ejected_instance_is_chosen_again_once_its_ejection_ends() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    a.set("fail", true).await;
    let h = herald(&[&a, &b], |c| {
        shop(c).outlier.eject_for = herald_core::Span::from_millis(300);
        shop(c).retry_budget = Some(0.0);
    })
    .await;
    for _ in 0..10 {
        h.http.post(format!("{}/gw/shop/order", h.url)).send().await.unwrap();
    }
    let ejected = h.services().await;
    assert!(ejected["items"][0]["instances"][0]["ejected_for_ms"].is_u64(), "{ejected}");

    a.set("fail", false).await;
    eventually("the recovered instance came back", Duration::from_secs(5), async || {
        let who = h.who_answers(10).await;
        if who.iter().any(|w| w == "a") { Ok(()) } else { Err(format!("{who:?}")) }
    })
    .await;
    assert!(h.services().await["items"][0]["instances"][0]["ejected_for_ms"].is_null());
}

#[tokio::test]
async fn a_post_is_retried_on_another_instance_only_with_an_idempotency_key() {
    let (bad, good) = (Upstream::start("bad"), Upstream::start("good"));
    bad.set("fail", true).await;
    let h = herald(&[&bad, &good], |_| {}).await;

    let mut plain = Vec::new();
    let mut keyed = Vec::new();
    for i in 0..4 {
        let r = h.http.post(format!("{}/gw/shop/pay", h.url)).body("{}").send().await.unwrap();
        plain.push(r.status().as_u16());
        let r = h
            .http
            .post(format!("{}/gw/shop/pay-keyed", h.url))
            .header("idempotency-key", format!("k{i}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        keyed.push(r.status().as_u16());
    }

    assert!(plain.contains(&500), "a plain POST sent to the failing instance gets its answer: {plain:?}");
    assert_eq!(keyed, [200, 200, 200, 200], "a keyed POST is retried on the other instance");
    let (bad_calls, good_calls) = (bad.calls().await, good.calls().await);
    let plain_total = bad_calls.get("/pay").copied().unwrap_or(0) + good_calls.get("/pay").copied().unwrap_or(0);
    assert_eq!(plain_total, 4, "each plain POST reached one instance once");
    assert_eq!(good_calls["/pay-keyed"], 4);
}

#[tokio::test]
async fn a_registered_instance_serves_until_its_ttl_passes_without_a_heartbeat() {
    let a = Upstream::start("a");
    let h = herald(&[], |c| {
        shop(c).instances.clear();
        c.registry.allow = vec!["127.0.0.1".into()];
    })
    .await;
    let put = h
        .http
        .put(format!("{}/v1/services/shop/instances/a-1", h.url))
        .json(&json!({"url": a.url, "ttl": "1s", "metadata": {"zone": "eu"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    assert_eq!(h.instance_of("/gw/shop/who").await, (200, "a".to_string()));
    let listed = h.services().await;
    assert_eq!(listed["items"][0]["instances"][0]["metadata"]["zone"], "eu");

    eventually("the instance gone with its TTL", Duration::from_secs(5), async || {
        h.services().await["items"][0]["instances"].as_array().unwrap().is_empty().then_some(())
    })
    .await;
    let gone = h.get("/gw/shop/who").await;
    assert_eq!(gone.status(), 503);
    assert!(gone.headers().contains_key("retry-after"));
    let bad = h
        .http
        .put(format!("{}/v1/services/shop/instances/x", h.url))
        .json(&json!({"url": "ftp://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn over_the_rate_a_client_gets_429_with_retry_after_and_unknown_services_are_unreachable() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |c| {
        c.gateway.rate_limit =
            Some(herald_gateway::config::RateLimit { per_second: 2, burst: 3, key: "header:x-api-key".into() });
    })
    .await;
    let send = |key: &'static str| h.http.get(format!("{}/gw/shop/who", h.url)).header("x-api-key", key).send();

    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(send("alice").await.unwrap());
    }
    let other = send("bob").await.unwrap();

    let statuses: Vec<u16> = first.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert!(first[3].headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(other.status(), 200, "each client has its own bucket");
    for path in ["/gw/nowhere/x", "/gw/herald.webhook/x"] {
        let r = h.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn headers_are_forwarded_and_hop_by_hop_ones_stay_behind() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |_| {}).await;

    let r = h
        .http
        .get(format!("{}/gw/shop/items?q=tea", h.url))
        .header("connection", "x-private")
        .header("x-private", "1")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    let seen: Value = r.json().await.unwrap();

    let headers = &seen["headers"];
    assert_eq!(seen["path"], "/items");
    assert_eq!(seen["query"], "q=tea");
    assert_eq!(headers["x-custom"], "kept");
    assert!(headers.get("x-private").is_none(), "named in Connection: not passed on");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert!(headers["forwarded"].as_str().unwrap().starts_with("for=127.0.0.1;proto=http"));
    assert_eq!(headers["traceparent"].as_str().unwrap().len(), 55);
    assert_eq!(headers["x-correlation-id"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn an_h2c_service_is_reached_over_http2() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |c| {
        shop(c).protocol = herald_gateway::registry::Protocol::H2c;
    })
    .await;
    let seen: Value = h.get("/gw/shop/v").await.json().await.unwrap();
    assert_eq!(seen["version"], "HTTP/2.0");
}

#[tokio::test]
async fn an_instance_that_fails_its_health_checks_gets_no_traffic() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let h = herald(&[&a, &b], |c| {
        shop(c).health = Some(herald_gateway::registry::settings::HealthConfig {
            interval: herald_core::Span::from_millis(50),
            unhealthy: 2,
            healthy: 1,
            ..Default::default()
        });
    })
    .await;
    a.set("sick", true).await;
    eventually("the sick instance marked down", Duration::from_secs(5), async || {
        (h.services().await["items"][0]["instances"][0]["health"] == "down").then_some(())
    })
    .await;

    let who = h.who_answers(10).await;
    assert!(who.iter().all(|w| w == "b"), "{who:?}");
}

#[tokio::test]
async fn a_100_mb_body_streams_through_both_ways_in_flat_memory() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |_| {}).await;
    let rss = || procfs_rss_mb();
    let before = rss();

    let chunk = bytes::Bytes::from(vec![7u8; 1024 * 1024]);
    let upload = futures::stream::iter((0..100).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let counted: Value = h
        .http
        .post(format!("{}/gw/shop/count", h.url))
        .body(reqwest::Body::wrap_stream(upload))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // On a connection of its own: the upload's went to hyper (a chunked
    // body), this one stays on the express lane.
    let fresh = reqwest::Client::new().get(format!("{}/gw/shop/big?mb=100", h.url));
    let mut download = fresh.send().await.unwrap().bytes_stream();
    let mut got = 0usize;
    use futures::StreamExt;
    while let Some(c) = download.next().await {
        got += c.unwrap().len();
    }
    let grew = rss() - before;

    assert_eq!(counted["bytes"], 100 * 1024 * 1024, "every byte arrived upstream");
    assert_eq!(got, 100 * 1024 * 1024, "every byte came back");
    assert!(grew < 40.0, "herald's memory stayed flat: grew {grew:.1} MB for 200 MB through it");
}

/// This process's resident memory, in MB.
fn procfs_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

#[tokio::test]
async fn an_async_route_starts_an_operation_instead_of_calling_the_service() {
    let a = Upstream::start("a");
    let wf = "name = \"order\"\n[[steps]]\nname = \"record\"\ncall = { service = \"shop\", path = \"/record\" }\n"
        .to_string();
    let herald = herald_testkit::Herald::build()
        .file("w.toml", &wf)
        .config(|config| {
            config.services.insert("shop".into(), ServiceConfig::new(vec![a.url.clone()]));
            config.gateway.routes.push(herald_gateway::config::AsyncRoute {
                service: "shop".into(),
                method: "POST".into(),
                path: "/orders".into(),
                workflow: "order".into(),
            });
        })
        .start()
        .await;
    let (url, http) = (herald.base.clone(), herald.http.clone());

    let started = http.post(format!("{url}/gw/shop/orders")).json(&json!({"sku": "tea"})).send().await.unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(started.status(), 202);
    let op = eventually("the operation succeeded", Duration::from_secs(10), async || {
        let op: Value = http.get(format!("{url}{location}")).send().await.unwrap().json().await.unwrap();
        if op["status"] == "succeeded" { Ok(op) } else { Err(op) }
    })
    .await;
    assert_eq!(op["input"]["sku"], "tea", "the body became the input");
    assert_eq!(a.calls().await.get("/orders"), None, "the service itself was not called on that path");
    assert_eq!(a.calls().await["/record"], 1, "the workflow's step was");
    let passed = http.get(format!("{url}/gw/shop/orders")).send().await.unwrap();
    assert_eq!(passed.status(), 200, "another method on the same path is passed on");
}

#[tokio::test]
async fn least_loaded_balancing_sends_most_work_to_the_instance_that_keeps_up() {
    let (slow, fast) = (Upstream::start("slow"), Upstream::start("fast"));
    slow.set("slow", true).await;
    let h = herald(&[&slow, &fast], |c| {
        shop(c).balance = herald_gateway::registry::Balance::LeastLoaded;
        shop(c).timeout = Some(herald_core::Span::from_millis(5000));
    })
    .await;

    // Ten clients, each sending one request after another: the slow
    // instance keeps what it gets for seconds, so it is rarely the less busy.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<String, u32>::new()));
    let clients = (0..10).map(|_| {
        let (h, seen) = (&h, seen.clone());
        async move {
            for _ in 0..10 {
                let (status, who) = h.instance_of("/gw/shop/who").await;
                assert_eq!(status, 200);
                *seen.lock().unwrap().entry(who).or_default() += 1;
            }
        }
    });
    futures::future::join_all(clients).await;

    let seen = seen.lock().unwrap().clone();
    assert!(seen.get("fast").copied().unwrap_or(0) >= 85, "{seen:?}");
}

#[tokio::test]
async fn a_body_over_the_gateway_limit_is_refused_before_it_is_sent() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |c| {
        c.gateway.max_body_bytes = 1000;
    })
    .await;

    let declared = h.http.post(format!("{}/gw/shop/upload", h.url)).body(vec![0u8; 2000]).send().await.unwrap();
    let chunk = bytes::Bytes::from(vec![1u8; 600]);
    let streamed = futures::stream::iter((0..3).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let chunked = h
        .http
        .post(format!("{}/gw/shop/count", h.url))
        .body(reqwest::Body::wrap_stream(streamed))
        .send()
        .await
        .unwrap();

    assert_eq!(declared.status(), 413);
    assert_eq!(declared.headers()["content-type"], "application/problem+json");
    assert_eq!(chunked.status(), 413, "a chunked body is cut off when it passes the limit");
    assert_eq!(a.calls().await.get("/upload"), None, "the declared one never reached the service");
}

/// The port the instance saw `client`'s request come from: one per
/// connection herald holds to it.
async fn upstream_port(h: &Herald, client: &reqwest::Client) -> u64 {
    let r = client.get(format!("{}/gw/shop/who", h.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["peer_port"].as_u64().unwrap()
}

#[tokio::test]
async fn a_client_connection_keeps_its_own_connection_to_the_instance_and_outlives_its_closing() {
    let a = Upstream::start("a");
    let h = herald(&[&a], |_| {}).await;

    // One client connection (requests one after another reuse it): its
    // requests share one connection to the instance.
    let one = reqwest::Client::new();
    let mut ports = Vec::new();
    for _ in 0..10 {
        ports.push(upstream_port(&h, &one).await);
    }
    assert!(ports.iter().all(|p| *p == ports[0]), "one upstream connection: {ports:?}");
    // Another client connection gets another.
    let other = upstream_port(&h, &reqwest::Client::new()).await;
    assert_ne!(other, ports[0], "a second client connection has its own");

    // The instance now closes every connection after answering: each
    // request goes out on a fresh one, and none fails.
    a.set("close", true).await;
    let mut fresh = Vec::new();
    for _ in 0..10 {
        fresh.push(upstream_port(&h, &one).await);
    }
    fresh.sort();
    fresh.dedup();
    assert_eq!(fresh.len(), 10, "a new connection each time: {fresh:?}");
    a.set("close", false).await;
    assert_eq!(upstream_port(&h, &one).await, upstream_port(&h, &one).await, "kept again once it stops closing");
}
