//! Waiting on a condition with a deadline: a probe polled until it holds,
//! never a sleep that hopes the condition will hold after it.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

/// How often a probe is asked again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it answers `Some`; `None` once `within` has passed.
pub async fn until<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// As [`until`], failing the test (saying `what`) after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    until(within, probe).await.unwrap_or_else(|| panic!("{what}: not within {within:?}"))
}

/// A count once it has come to rest: `probe` is polled until it reads at
/// least `at_least`, then until it has read the same for `quiet`. How a
/// test says "and no more": a count read the moment it reached its mark
/// would miss a late duplicate. `quiet` must outlast whatever could still
/// add to it (a retry's backoff, a poll). Fails the test, saying `what`,
/// after `within`.
pub async fn settled(
    what: &str,
    at_least: usize,
    quiet: Duration,
    within: Duration,
    mut probe: impl FnMut() -> usize,
) -> usize {
    let deadline = Instant::now() + within;
    let (mut last, mut since) = (probe(), Instant::now());
    loop {
        let now = Instant::now();
        if last >= at_least && now - since >= quiet {
            return last;
        }
        assert!(now < deadline, "{what}: {last} (at least {at_least} wanted) not settled within {within:?}");
        tokio::time::sleep(POLL).await;
        let seen = probe();
        if seen != last {
            (last, since) = (seen, Instant::now());
        }
    }
}

/// Whether herald at `base` answered `GET /readyz` with 200 within `within`.
pub async fn ready(http: &reqwest::Client, base: &str, within: Duration) -> bool {
    let probe = || async move {
        let resp = http.get(format!("{base}/readyz")).send().await;
        resp.is_ok_and(|r| r.status() == 200).then_some(())
    };
    until(within, probe).await.is_some()
}

/// Waits until `n` operations of `workflow` have succeeded on herald at
/// `base` (`n` at most 200: one page), failing the test after `within`.
pub async fn all_succeeded(http: &reqwest::Client, base: &str, workflow: &str, n: usize, within: Duration) {
    let list = format!("{base}/v1/operations?workflow={workflow}&status=succeeded&limit=200");
    let all_succeeded = || async {
        let got: serde_json::Value = http.get(&list).send().await.ok()?.json().await.ok()?;
        (got["items"].as_array()?.len() == n).then_some(())
    };
    eventually(&format!("all {n} {workflow} operations succeeded"), within, all_succeeded).await;
}
