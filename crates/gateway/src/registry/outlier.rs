//! Outlier detection, as Envoy's: an instance that fails
//! `consecutive_failures` calls in a row is ejected (not chosen) for
//! `eject_for` times the number of times it was ejected in a row, up to
//! `max_eject_for`; then it is chosen again. It never ejects every
//! instance: at most `max_ejection_percent` of them (at least one when
//! there are two or more, never the last), and when fewer than
//! `panic_threshold` percent are healthy, balancing ignores health and
//! ejection and spreads over all (Envoy's panic mode), since a service
//! with no instance left would only make work wait for nothing.
//!
//! Whether the *service* takes calls is the circuit breaker's to say
//! (`circuit`); this only chooses among its instances.

use std::time::{Duration, Instant};

use serde::Deserialize;

use herald_core::Span;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierConfig {
    pub consecutive_failures: u32,
    pub eject_for: Span,
    pub max_eject_for: Span,
    pub max_ejection_percent: u32,
    pub panic_threshold: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_failures: 5,
            eject_for: Span::from_millis(5_000),
            max_eject_for: Span::from_millis(60_000),
            max_ejection_percent: 50,
            panic_threshold: 50,
        }
    }
}

impl OutlierConfig {
    /// How many of `n` instances may be ejected at once.
    pub fn max_ejected(&self, n: usize) -> usize {
        let share = n * self.max_ejection_percent.min(100) as usize / 100;
        share.max(1).min(n.saturating_sub(1))
    }

    /// With `healthy` of `n` instances fit to choose, choose among all.
    pub fn panics(&self, healthy: usize, n: usize) -> bool {
        healthy * 100 < n * self.panic_threshold.min(100) as usize || healthy == 0
    }
}

#[derive(Debug, Default)]
pub struct Outlier {
    consecutive: u32,
    ejected_until: Option<Instant>,
    /// Ejections in a row, with no success in between.
    ejections: u32,
}

impl Outlier {
    pub fn ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|t| now < t)
    }

    /// How long it stays out, while ejected.
    pub fn ejected_for(&self, now: Instant) -> Option<Duration> {
        self.ejected_until.filter(|t| now < *t).map(|t| t - now)
    }

    /// A call's outcome. `may_eject`: ejecting it would keep within the
    /// service's ejection cap.
    pub fn record(&mut self, failed: bool, now: Instant, c: &OutlierConfig, may_eject: bool) {
        if !failed {
            self.consecutive = 0;
            if !self.ejected(now) {
                self.ejections = 0;
            }
            return;
        }
        self.consecutive += 1;
        if self.consecutive >= c.consecutive_failures.max(1) && may_eject && !self.ejected(now) {
            self.ejections += 1;
            let time = c.eject_for.0.saturating_mul(self.ejections).min(c.max_eject_for.0.max(c.eject_for.0));
            self.ejected_until = Some(now + time);
            self.consecutive = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn five_failures_in_a_row_eject_it_for_longer_each_time() {
        let (c, t0) = (OutlierConfig::default(), Instant::now());
        let mut o = Outlier::default();
        for _ in 0..4 {
            o.record(true, t0, &c, true);
        }
        assert!(!o.ejected(t0), "four are not five");
        o.record(true, t0, &c, true);
        assert_eq!(o.ejected_for(t0), Some(Duration::from_secs(5)));
        let back = t0 + Duration::from_secs(5);
        assert!(!o.ejected(back), "back after its time");
        for _ in 0..5 {
            o.record(true, back, &c, true);
        }
        assert_eq!(o.ejected_for(back), Some(Duration::from_secs(10)), "twice as long the second time");
    }

    #[test]
    fn an_instance_is_not_ejected_past_the_cap() {
        let (c, t0) = (OutlierConfig::default(), Instant::now());
        let mut o = Outlier::default();
        for _ in 0..20 {
            o.record(true, t0, &c, false);
        }
        assert!(!o.ejected(t0));
    }

    #[test]
    fn the_cap_never_takes_the_last_instance_and_panic_mode_spreads_over_all() {
        let c = OutlierConfig::default();
        assert_eq!([1, 2, 3, 4, 10].map(|n| c.max_ejected(n)), [0, 1, 1, 2, 5]);
        assert!(c.panics(0, 1));
        assert!(c.panics(1, 3), "one of three healthy is under half");
        assert!(!c.panics(1, 2), "one of two is half");
    }

    proptest! {
        #[test]
        fn whatever_the_percentages_some_instance_is_always_left(
            n in 1usize..50, max_pct in 0u32..200, panic in 0u32..200,
        ) {
            let c = OutlierConfig { max_ejection_percent: max_pct, panic_threshold: panic, ..OutlierConfig::default() };
            prop_assert!(c.max_ejected(n) < n);
            prop_assert!(c.panics(0, n), "no healthy instance always panics");
        }
    }
}
