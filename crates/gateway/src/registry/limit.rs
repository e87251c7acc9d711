//! A service's adaptive concurrency limit (AIMD, as Netflix's
//! concurrency-limits `AIMDLimit`, with TCP's rule of one decrease per
//! round): herald keeps at most `limit` calls in flight to the service. An
//! answer that says "slow down" (429, 503) or a timeout multiplies the
//! limit by [`BACKOFF`] — once per round: only a call admitted since the
//! last decrease can cause the next, so one burst of busy answers lowers
//! the limit once, not once per answer. Each success while the limit is
//! in use (half of it or more in flight) adds one, up to the service's
//! `max_in_flight`, the bulkhead that also keeps one slow service from
//! taking the engine's whole pool of calls. The limit settles where busy
//! answers are rare: a service answering busy to most calls is brought
//! down to a few in flight, one that sheds a fifth at random to some tens
//! (docs/BENCH.md). It starts at the bulkhead: herald trusts a service
//! until it says it is busy.
//!
//! A page of arithmetic of our own: the limiter crates are built around
//! their own call wrappers and clocks, and this must share a lock with the
//! breaker so that admitting a call is one act.

/// What an answer says about the service's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Done (or failed in a way that says nothing of load).
    Success,
    /// 429, 503 or a timeout: too much in flight.
    Dropped,
    /// Nothing: no answer, or one that is neither.
    Ignored,
}

/// The factor a round's dropped call applies to the limit.
pub const BACKOFF: f64 = 0.9;

/// Which round a call was admitted in.
pub type Round = u64;

#[derive(Debug, Clone)]
pub struct Limit {
    limit: f64,
    max: u32,
    in_flight: u32,
    /// Moves on at each decrease.
    round: Round,
}

impl Limit {
    pub fn new(max: u32) -> Self {
        let max = max.max(1);
        Limit { limit: f64::from(max), max, in_flight: 0, round: 0 }
    }

    /// Takes a place for one call, if the limit leaves one; answers the
    /// round it was admitted in.
    pub fn acquire(&mut self) -> Option<Round> {
        if self.in_flight >= self.limit() {
            return None;
        }
        self.in_flight += 1;
        Some(self.round)
    }

    /// The answer of a call admitted in `round` moves the limit (the call
    /// is still counted in flight).
    pub fn answered(&mut self, signal: Signal, round: Round) {
        match signal {
            Signal::Dropped if round == self.round => {
                self.limit = (self.limit * BACKOFF).max(1.0);
                self.round += 1;
            }
            Signal::Success if f64::from(self.in_flight) * 2.0 >= self.limit => {
                self.limit = (self.limit + 1.0).min(f64::from(self.max));
            }
            _ => {}
        }
    }

    /// A call ended: its place is free.
    pub fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Calls allowed in flight now (at least one).
    pub fn limit(&self) -> u32 {
        (self.limit as u32).max(1)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    pub fn max(&self) -> u32 {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn it_starts_at_the_bulkhead_and_refuses_past_it() {
        let mut l = Limit::new(3);
        assert!(l.acquire().is_some() && l.acquire().is_some() && l.acquire().is_some());
        assert_eq!(l.acquire(), None, "the bulkhead holds");
        l.release();
        assert!(l.acquire().is_some());
    }

    #[test]
    fn a_burst_of_busy_answers_lowers_it_once_and_each_round_of_them_again() {
        let mut l = Limit::new(100);
        let rounds: Vec<Round> = (0..50).map(|_| l.acquire().unwrap()).collect();
        for r in rounds {
            l.answered(Signal::Dropped, r);
            l.release();
        }
        assert_eq!(l.limit(), 90, "fifty busy answers of one round: lowered once");
        let next: Vec<Round> = (0..10).map(|_| l.acquire().unwrap()).collect();
        l.answered(Signal::Dropped, next[0]);
        assert_eq!(l.limit(), 81, "a call of the next round lowers it again");
    }

    #[test]
    fn successes_in_use_raise_it_back_and_unused_ones_do_not() {
        let mut l = Limit::new(100);
        l.limit = 40.0;
        for _ in 0..100 {
            let r = l.acquire().unwrap();
            l.answered(Signal::Success, r);
            l.release();
        }
        assert_eq!(l.limit(), 40, "one call at a time never uses half of 40");
        let out: Vec<Round> = (0..30).map(|_| l.acquire().unwrap()).collect();
        for r in out {
            l.answered(Signal::Success, r);
            l.release();
        }
        assert!(l.limit() > 40, "with most of it in use, it grows: {}", l.limit());
    }

    #[derive(Debug, Clone)]
    enum Step {
        Acquire,
        Answer(usize, u8),
        Release(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => Just(Step::Acquire),
            2 => (any::<usize>(), 0u8..3).prop_map(|(i, k)| Step::Answer(i, k)),
            2 => any::<usize>().prop_map(Step::Release),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn in_flight_never_passes_the_limit_when_a_call_starts_and_the_limit_stays_in_bounds(
            max in 1u32..300,
            steps in prop::collection::vec(step(), 0..400),
        ) {
            let mut l = Limit::new(max);
            let mut out: Vec<Round> = Vec::new();
            for s in steps {
                match s {
                    Step::Acquire => {
                        let before = (l.in_flight(), l.limit());
                        match l.acquire() {
                            Some(r) => {
                                prop_assert!(before.0 < before.1, "admitted at {} of {}", before.0, before.1);
                                out.push(r);
                            }
                            None => prop_assert!(before.0 >= before.1),
                        }
                    }
                    Step::Answer(i, k) if !out.is_empty() => {
                        let r = out.remove(i % out.len());
                        let before = l.limit();
                        let signal = [Signal::Success, Signal::Dropped, Signal::Ignored][k as usize];
                        let current = r == l.round;
                        l.answered(signal, r);
                        if signal == Signal::Dropped && !current {
                            prop_assert_eq!(l.limit(), before, "a call of an earlier round lowered it again");
                        }
                        l.release();
                    }
                    Step::Release(i) if !out.is_empty() => {
                        out.remove(i % out.len());
                        l.release();
                    }
                    _ => {}
                }
                prop_assert_eq!(l.in_flight() as usize, out.len());
                prop_assert!((1..=max).contains(&l.limit()));
            }
        }

        #[test]
        fn after_any_history_enough_busy_answers_bring_it_to_one_and_enough_successes_to_the_bulkhead(
            max in 1u32..300,
            history in prop::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut l = Limit::new(max);
            for busy in history {
                if let Some(r) = l.acquire() {
                    l.answered(if busy { Signal::Dropped } else { Signal::Success }, r);
                    l.release();
                }
            }
            // Overload: every call of every round answers busy.
            let mut busy = l.clone();
            for _ in 0..60 {
                let r = busy.acquire().unwrap();
                busy.answered(Signal::Dropped, r);
                busy.release();
            }
            prop_assert_eq!(busy.limit(), 1);
            // Recovery: calls fill the limit and succeed.
            for _ in 0..(2 * max) {
                let taken: Vec<Round> = std::iter::from_fn(|| busy.acquire()).collect();
                for r in taken { busy.answered(Signal::Success, r); busy.release(); }
            }
            prop_assert_eq!(busy.limit(), max);
        }
    }
}
