//! A service's circuit breaker, as Resilience4j's: closed, it counts the
//! outcome of every call over a sliding window of time; once the window
//! holds `min_requests` calls and at least `failure_rate` of them failed
//! (or `consecutive_failures` failed in a row, for a quiet service), it
//! opens. Open, it refuses every call until its time is up, then lets
//! `half_open_probes` calls through (half-open): when they have all
//! answered and fewer than `failure_rate` of them failed it closes, else it
//! opens again for twice as long (up to `max_open_for`).
//!
//! Only failures count: refused connections, timeouts and 5xx other than
//! 503. A service that sheds load (429, 503) is answering, and is slowed
//! down by the concurrency limit instead (`limit`).
//!
//! Time is passed in, so the rules are tested without waiting. A small
//! breaker of our own: the crates for it are either young and changing
//! fast or no longer maintained, and this one is a page.

use std::time::{Duration, Instant};

use serde::Deserialize;

use herald_core::Span;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitConfig {
    /// A failure rate at or above this over `window` opens the circuit…
    pub failure_rate: f64,
    /// …once the window has seen this many calls.
    pub min_requests: u32,
    pub window: Span,
    /// This many failures in a row open it too, whatever the window holds.
    pub consecutive_failures: u32,
    /// How long it stays open the first time; each reopening doubles it.
    pub open_for: Span,
    pub max_open_for: Span,
    /// Calls let through while half-open; their answers decide.
    pub half_open_probes: u32,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            failure_rate: 0.5,
            min_requests: 20,
            window: Span::from_millis(10_000),
            consecutive_failures: 5,
            open_for: Span::from_millis(5_000),
            max_open_for: Span::from_millis(30_000),
            half_open_probes: 3,
        }
    }
}

/// How long a caller refused because the probes are out should wait
/// before asking again (their answers usually wake it sooner).
const PROBING_RETRY: Duration = Duration::from_millis(250);

/// Buckets of the sliding window.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { admitted: u32, succeeded: u32, failed: u32 },
}

/// A call the breaker let through; its answer goes back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    generation: u64,
    probe: bool,
}

/// Why the breaker refused a call, and when to ask again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Open {
        retry_after: Duration,
    },
    /// Half-open, with every probe out.
    Probing,
}

impl Refused {
    pub fn retry_after(&self) -> Duration {
        match self {
            Refused::Open { retry_after } => *retry_after,
            Refused::Probing => PROBING_RETRY,
        }
    }
}

#[derive(Debug)]
pub struct Circuit {
    state: State,
    /// Moves on at every change of state: answers to calls let through
    /// before it say nothing about the new state.
    generation: u64,
    window: Window,
    consecutive: u32,
    /// Times opened without a close in between: the open time grows with it.
    opened: u32,
    /// Why it last opened, for operators.
    reason: Option<String>,
}

impl Circuit {
    pub fn new(now: Instant) -> Self {
        Circuit {
            state: State::Closed,
            generation: 0,
            window: Window::new(now),
            consecutive: 0,
            opened: 0,
            reason: None,
        }
    }

    /// Takes the breaker's leave for one call: closed, any call; half-open,
    /// one of the probes. The caller must hand the ticket back with
    /// [`Circuit::record`] or [`Circuit::release`].
    pub fn admit(&mut self, now: Instant, c: &CircuitConfig) -> Result<Ticket, Refused> {
        if let State::Open { until } = self.state {
            if now < until {
                return Err(Refused::Open { retry_after: until - now });
            }
            self.set(State::HalfOpen { admitted: 0, succeeded: 0, failed: 0 });
        }
        let generation = self.generation;
        match &mut self.state {
            State::Closed => Ok(Ticket { generation, probe: false }),
            State::HalfOpen { admitted, .. } if *admitted < c.half_open_probes.max(1) => {
                *admitted += 1;
                Ok(Ticket { generation, probe: true })
            }
            _ => Err(Refused::Probing),
        }
    }

    /// The answer to a call let through: `failed` when it counts against
    /// the service (refused connection, timeout, 5xx but 503).
    pub fn record(&mut self, ticket: Ticket, failed: bool, now: Instant, c: &CircuitConfig) {
        if ticket.generation != self.generation {
            return; // let through before the last change: it no longer counts
        }
        match &mut self.state {
            State::HalfOpen { succeeded, failed: probes_failed, .. } => {
                if failed {
                    *probes_failed += 1;
                } else {
                    *succeeded += 1;
                }
                let (ok, bad, n) = (*succeeded, *probes_failed, c.half_open_probes.max(1));
                if f64::from(bad) >= c.failure_rate * f64::from(n) && bad > 0 {
                    self.open(now, c, format!("{bad} of {} probes failed", ok + bad));
                } else if ok + bad >= n {
                    self.close(now);
                }
            }
            State::Open { .. } => {}
            State::Closed => {
                let (calls, failures) = self.window.add(now, failed, c.window.0);
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                if !failed {
                    return;
                }
                if self.consecutive >= c.consecutive_failures.max(1) {
                    let reason = format!("{} calls in a row failed", self.consecutive);
                    self.open(now, c, reason);
                } else if calls >= c.min_requests && f64::from(failures) >= c.failure_rate * f64::from(calls) {
                    let reason = format!("{failures} of the last {calls} calls failed");
                    self.open(now, c, reason);
                }
            }
        }
    }

    /// A call let through ended with no answer that says anything (the
    /// caller went away, or never sent it): its probe slot is free again.
    pub fn release(&mut self, ticket: Ticket) {
        if let State::HalfOpen { admitted, .. } = &mut self.state
            && ticket.probe
            && ticket.generation == self.generation
        {
            *admitted = admitted.saturating_sub(1);
        }
    }

    fn set(&mut self, state: State) {
        self.state = state;
        self.generation += 1;
    }

    fn open(&mut self, now: Instant, c: &CircuitConfig, reason: String) {
        let factor = 2u32.saturating_pow(self.opened.min(16));
        let time = c.open_for.0.saturating_mul(factor).min(c.max_open_for.0.max(c.open_for.0));
        self.opened += 1;
        self.reason = Some(reason);
        self.consecutive = 0;
        self.window = Window::new(now);
        self.set(State::Open { until: now + time });
    }

    fn close(&mut self, now: Instant) {
        self.opened = 0;
        self.consecutive = 0;
        self.window = Window::new(now);
        self.set(State::Closed);
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// `closed`, `open` or `half_open` (an open circuit whose time is up
    /// is half-open: the next call is a probe).
    pub fn name(&self, now: Instant) -> &'static str {
        match self.state {
            State::Closed => "closed",
            State::Open { until } if now < until => "open",
            _ => "half_open",
        }
    }

    /// Why it opened, while it is not closed.
    pub fn reason(&self) -> Option<&str> {
        (self.state != State::Closed).then_some(self.reason.as_deref()).flatten()
    }

    /// How long until it may let a call through again, when it is open.
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }
}

/// Calls and failures over the last `window`, in [`BUCKETS`] slices of
/// time, so old answers leave it slice by slice rather than all at once.
#[derive(Debug)]
struct Window {
    origin: Instant,
    /// (slice number, calls, failures) per bucket.
    buckets: [(u64, u32, u32); BUCKETS],
}

impl Window {
    fn new(origin: Instant) -> Self {
        Window { origin, buckets: [(u64::MAX, 0, 0); BUCKETS] }
    }

    /// Counts one call; answers the window's (calls, failures).
    fn add(&mut self, now: Instant, failed: bool, window: Duration) -> (u32, u32) {
        let slice = (window / BUCKETS as u32).max(Duration::from_millis(1));
        let n = (now.saturating_duration_since(self.origin).as_nanos() / slice.as_nanos()) as u64;
        let b = &mut self.buckets[(n % BUCKETS as u64) as usize];
        if b.0 != n {
            *b = (n, 0, 0);
        }
        b.1 += 1;
        b.2 += u32::from(failed);
        let live = self.buckets.iter().filter(|b| b.0 != u64::MAX && b.0 + BUCKETS as u64 > n);
        live.fold((0, 0), |(c, f), b| (c + b.1, f + b.2))
    }
}

#[cfg(test)]
mod tests;
