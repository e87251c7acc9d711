//! Waiting on a condition with a deadline: a probe polled until it holds,
//! never a sleep that hopes the condition will hold after it.

use std::{fmt::Display, time::Duration};

use tokio::time::Instant;

/// How often a probe is asked again.
const POLL: Duration = Duration::from_millis(20);

/// What a probe answers: the value waited for, or that it is not there
/// yet. `None` says only that; `Err` also says what the probe saw instead,
/// which a failed wait then tells.
pub trait Probe {
    type Value;
    fn answer(self) -> Result<Self::Value, Option<String>>;
}

impl<T> Probe for Option<T> {
    type Value = T;
    fn answer(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Probe for Result<T, E> {
    type Value = T;
    fn answer(self) -> Result<T, Option<String>> {
        self.map_err(|seen| Some(seen.to_string()))
    }
}

/// Polls `probe` until it answers `Some`; `None` once `within` has passed.
pub async fn until<T>(within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> Option<T> {
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

/// As [`until`], failing the test after `within`, saying `what` and, for a
/// probe answering `Err`, what it saw last.
pub async fn eventually<P: Probe>(what: &str, within: Duration, mut probe: impl AsyncFnMut() -> P) -> P::Value {
    let wait = Wait::new(what, within);
    loop {
        if let Some(v) = wait.check(probe().await) {
            return v;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// As [`eventually`], for code that must not await: a `Drop`, a
/// `spawn_blocking`, a plain `#[test]`. It blocks its thread between
/// probes, so never call it on a runtime's own thread.
pub fn eventually_blocking<P: Probe>(what: &str, within: Duration, mut probe: impl FnMut() -> P) -> P::Value {
    let wait = Wait::new(what, within);
    loop {
        if let Some(v) = wait.check(probe()) {
            return v;
        }
        std::thread::sleep(POLL);
    }
}

/// A wait's deadline, and what its failure says.
struct Wait<'a> {
    what: &'a str,
    within: Duration,
    deadline: Instant,
}

impl<'a> Wait<'a> {
    fn new(what: &'a str, within: Duration) -> Self {
        Wait { what, within, deadline: Instant::now() + within }
    }

    /// The value, once the probe answers it; `None` to ask again, failing
    /// the test once the deadline has passed.
    fn check<P: Probe>(&self, answer: P) -> Option<P::Value> {
        let seen = match answer.answer() {
            Ok(v) => return Some(v),
            Err(seen) => seen.map(|s| format!("; last seen: {s}")).unwrap_or_default(),
        };
        let (what, within) = (self.what, self.within);
        assert!(Instant::now() < self.deadline, "{what}: not within {within:?}{seen}");
        None
    }
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
