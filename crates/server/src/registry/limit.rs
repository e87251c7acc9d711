//! A service's adaptive concurrency limit (AIMD, as Netflix's
//! concurrency-limits `AIMDLimit`): herald keeps at most `limit` calls in
//! flight to the service. Each answer that says "slow down" (429, 503) or
//! a timeout multiplies the limit by [`BACKOFF`]; each success while the
//! limit is in use (half of it or more in flight) adds one, up to the
//! service's `max_in_flight`, the bulkhead that also keeps one slow service
//! from taking the engine's whole pool of calls. It starts at the bulkhead:
//! herald trusts a service until it says it is busy.
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

/// The factor a dropped call applies to the limit.
pub const BACKOFF: f64 = 0.9;

#[derive(Debug, Clone)]
pub struct Limit {
    limit: f64,
    max: u32,
    in_flight: u32,
}

impl Limit {
    pub fn new(max: u32) -> Self {
        let max = max.max(1);
        Limit { limit: f64::from(max), max, in_flight: 0 }
    }

    /// Takes a place for one call, if the limit leaves one.
    pub fn acquire(&mut self) -> bool {
        if self.in_flight >= self.limit() {
            return false;
        }
        self.in_flight += 1;
        true
    }

    /// A call's answer moves the limit (the call is still counted in flight).
    pub fn answered(&mut self, signal: Signal) {
        match signal {
            Signal::Dropped => self.limit = (self.limit * BACKOFF).max(1.0),
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
        assert!(l.acquire() && l.acquire() && l.acquire());
        assert!(!l.acquire(), "the bulkhead holds");
        l.release();
        assert!(l.acquire());
    }

    #[test]
    fn busy_answers_lower_it_and_successes_in_use_raise_it_back() {
        let mut l = Limit::new(100);
        for _ in 0..50 {
            assert!(l.acquire());
        }
        for _ in 0..10 {
            l.answered(Signal::Dropped);
            l.release();
        }
        assert_eq!(l.limit(), 34, "100 × 0.9^10");
        // 40 still out: at least half the limit in use, so each success adds one.
        for _ in 0..40 {
            l.answered(Signal::Success);
            l.release();
        }
        assert!(l.limit() > 34, "it grows back: {}", l.limit());
    }

    #[test]
    fn successes_with_the_limit_unused_do_not_raise_it() {
        let mut l = Limit::new(100);
        l.limit = 40.0;
        for _ in 0..100 {
            assert!(l.acquire());
            l.answered(Signal::Success);
            l.release();
        }
        assert_eq!(l.limit(), 40, "one call at a time never uses half of 40");
    }

    #[derive(Debug, Clone)]
    enum Step {
        Acquire,
        Answer(u8),
        Release,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![3 => Just(Step::Acquire), 2 => (0u8..3).prop_map(Step::Answer), 2 => Just(Step::Release)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn in_flight_never_passes_the_limit_when_a_call_starts_and_the_limit_stays_in_bounds(
            max in 1u32..300,
            steps in prop::collection::vec(step(), 0..400),
        ) {
            let mut l = Limit::new(max);
            let mut out = 0u32;
            for s in steps {
                match s {
                    Step::Acquire => {
                        let before = (l.in_flight(), l.limit());
                        if l.acquire() {
                            prop_assert!(before.0 < before.1, "admitted at {} of {}", before.0, before.1);
                            out += 1;
                        } else {
                            prop_assert!(before.0 >= before.1);
                        }
                    }
                    Step::Answer(k) if out > 0 => {
                        l.answered([Signal::Success, Signal::Dropped, Signal::Ignored][k as usize]);
                        l.release();
                        out -= 1;
                    }
                    Step::Release if out > 0 => {
                        l.release();
                        out -= 1;
                    }
                    _ => {}
                }
                prop_assert_eq!(l.in_flight(), out);
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
                if l.acquire() {
                    l.answered(if busy { Signal::Dropped } else { Signal::Success });
                    l.release();
                }
            }
            let mut busy = l.clone();
            for _ in 0..100 {
                busy.answered(Signal::Dropped);
            }
            prop_assert_eq!(busy.limit(), 1);
            // Recovery: calls fill the limit and succeed.
            for _ in 0..(2 * max) {
                let mut taken = 0;
                while busy.acquire() { taken += 1; }
                for _ in 0..taken { busy.answered(Signal::Success); busy.release(); }
            }
            prop_assert_eq!(busy.limit(), max);
        }
    }
}
