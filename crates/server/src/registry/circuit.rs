//! One instance's circuit breaker, with outlier ejection.
//!
//! Closed, it counts answers: enough consecutive failures, or a failure
//! rate over the window (once enough requests were seen), opens it. Open,
//! it refuses calls until its time is up, then lets a few probes through
//! (half-open): their success closes it, a failure opens it again for
//! twice as long (an outlier is ejected for longer each time, up to a cap).
//! Time is passed in, so the rules are tested without waiting.
//!
//! A small breaker of our own: the crates for it are either young and
//! changing fast or no longer maintained, and this one is a page.

use std::time::{Duration, Instant};

use serde::Deserialize;

use herald_core::Span;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitConfig {
    /// This many failures in a row open the circuit.
    pub consecutive_failures: u32,
    /// A failure rate at or above this over `window` opens it too…
    pub failure_rate: f64,
    /// …once the window has seen this many requests.
    pub min_requests: u32,
    pub window: Span,
    /// How long it stays open the first time; each reopening doubles it.
    pub open_for: Span,
    pub max_open_for: Span,
    /// Calls let through at once while half-open.
    pub half_open_probes: u32,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            consecutive_failures: 5,
            failure_rate: 0.5,
            min_requests: 20,
            window: Span::from_millis(10_000),
            open_for: Span::from_millis(5_000),
            max_open_for: Span::from_millis(120_000),
            half_open_probes: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: u32 },
}

#[derive(Debug)]
pub struct Circuit {
    state: State,
    consecutive: u32,
    window_start: Instant,
    total: u32,
    failures: u32,
    /// Times opened without a close in between: the ejection grows with it.
    ejections: u32,
}

impl Circuit {
    pub fn new(now: Instant) -> Self {
        Circuit { state: State::Closed, consecutive: 0, window_start: now, total: 0, failures: 0, ejections: 0 }
    }

    /// May a call go to this instance now? A half-open circuit counts the
    /// probe it lets through; the caller must [`Circuit::record`] its answer.
    pub fn allow(&mut self, now: Instant, c: &CircuitConfig) -> bool {
        if let State::Open { until } = self.state {
            if now < until {
                return false;
            }
            self.state = State::HalfOpen { probing: 0 };
        }
        match &mut self.state {
            State::Closed => true,
            State::HalfOpen { probing } if *probing < c.half_open_probes.max(1) => {
                *probing += 1;
                true
            }
            _ => false,
        }
    }

    /// Would a call be let through, without taking a probe slot (for choosing).
    pub fn available(&self, now: Instant, c: &CircuitConfig) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probing } => probing < c.half_open_probes.max(1),
        }
    }

    pub fn record(&mut self, success: bool, now: Instant, c: &CircuitConfig) {
        match self.state {
            // A probe's answer decides: closed again, or open for longer.
            State::HalfOpen { .. } if success => self.close(now),
            State::HalfOpen { .. } => self.open(now, c),
            State::Open { .. } => {} // an answer to a call made before it opened
            State::Closed => {
                if now.duration_since(self.window_start) > c.window.0 {
                    self.window_start = now;
                    self.total = 0;
                    self.failures = 0;
                }
                self.total += 1;
                if success {
                    self.consecutive = 0;
                    return;
                }
                self.failures += 1;
                self.consecutive += 1;
                let rate_trips =
                    self.total >= c.min_requests && f64::from(self.failures) / f64::from(self.total) >= c.failure_rate;
                if self.consecutive >= c.consecutive_failures || rate_trips {
                    self.open(now, c);
                }
            }
        }
    }

    /// A call let through ended with no answer that says anything about the
    /// instance (the caller went away): its probe slot is free again.
    pub fn release(&mut self) {
        if let State::HalfOpen { probing } = &mut self.state {
            *probing = probing.saturating_sub(1);
        }
    }

    fn open(&mut self, now: Instant, c: &CircuitConfig) {
        let factor = 2u32.saturating_pow(self.ejections.min(16));
        let time = c.open_for.0.saturating_mul(factor).min(c.max_open_for.0.max(c.open_for.0));
        self.ejections += 1;
        self.state = State::Open { until: now + time };
    }

    fn close(&mut self, now: Instant) {
        *self = Circuit::new(now);
    }

    pub fn name(&self, now: Instant) -> &'static str {
        match self.state {
            State::Closed => "closed",
            State::Open { until } if now < until => "open",
            _ => "half_open",
        }
    }

    /// How long until it may let a call through again, when it is open.
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CircuitConfig {
        CircuitConfig { min_requests: 10, ..CircuitConfig::default() }
    }

    #[test]
    fn consecutive_failures_open_it_and_a_probe_closes_it_again() {
        let (c, t0) = (cfg(), Instant::now());
        let mut b = Circuit::new(t0);
        for _ in 0..4 {
            assert!(b.allow(t0, &c));
            b.record(false, t0, &c);
        }
        assert_eq!(b.name(t0), "closed", "four are not five");
        b.record(false, t0, &c);
        assert!(!b.allow(t0, &c), "open: calls refused");
        assert_eq!(b.retry_after(t0), Some(Duration::from_secs(5)));

        let later = t0 + Duration::from_secs(5);
        assert!(b.allow(later, &c), "half-open: one probe goes");
        assert!(!b.allow(later, &c), "only one probe at a time");
        b.record(true, later, &c);
        assert_eq!(b.name(later), "closed");
        assert!(b.allow(later, &c));
    }

    #[test]
    fn a_failed_probe_ejects_it_for_twice_as_long() {
        let (c, t0) = (cfg(), Instant::now());
        let mut b = Circuit::new(t0);
        for _ in 0..5 {
            b.record(false, t0, &c);
        }
        let probe = t0 + Duration::from_secs(5);
        assert!(b.allow(probe, &c));
        b.record(false, probe, &c);
        assert_eq!(b.retry_after(probe), Some(Duration::from_secs(10)));
    }

    #[test]
    fn a_high_failure_rate_opens_it_without_a_run_of_failures() {
        let (c, t0) = (cfg(), Instant::now());
        let mut b = Circuit::new(t0);
        for i in 0..10 {
            b.record(i % 2 == 0, t0, &c); // every other one fails: never five in a row
        }
        assert_eq!(b.name(t0), "open");
    }

    #[test]
    fn the_rate_window_starts_over() {
        let (c, t0) = (cfg(), Instant::now());
        let mut b = Circuit::new(t0);
        for i in 0..9 {
            b.record(i % 2 == 0, t0, &c);
        }
        b.record(false, t0 + Duration::from_secs(11), &c);
        assert_eq!(b.name(t0 + Duration::from_secs(11)), "closed", "old answers no longer count");
    }
}
