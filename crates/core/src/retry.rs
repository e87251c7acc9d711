//! Retry policy and backoff arithmetic: exponential, capped, with jitter.

use std::time::Duration;

use serde::Serialize;

use crate::{Span, workflow::raw::RawRetry};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    pub initial: Span,
    pub max: Span,
    pub multiplier: f64,
    /// Fraction of each delay that is randomised away: 0 = none, 1 = full jitter.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial: Span::from_millis(200),
            max: Span::from_millis(10_000),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// Fills the gaps from the defaults and checks the ranges. The error is
    /// `(field, message)`; the caller adds the step.
    pub fn from_raw(raw: RawRetry) -> Result<Self, (&'static str, String)> {
        let d = RetryPolicy::default();
        let p = RetryPolicy {
            attempts: raw.attempts.unwrap_or(d.attempts),
            initial: raw.initial.unwrap_or(d.initial),
            max: raw.max.unwrap_or(d.max.max(raw.initial.unwrap_or(d.initial))),
            multiplier: raw.multiplier.unwrap_or(d.multiplier),
            jitter: raw.jitter.unwrap_or(d.jitter),
        };
        if !(1..=1000).contains(&p.attempts) {
            return Err(("attempts", "must be between 1 and 1000".into()));
        }
        if p.max < p.initial {
            return Err(("max", format!("{} is less than `initial` ({})", p.max, p.initial)));
        }
        if !(1.0..=10.0).contains(&p.multiplier) {
            return Err(("multiplier", "must be between 1 and 10".into()));
        }
        if !(0.0..=1.0).contains(&p.jitter) {
            return Err(("jitter", "must be between 0 and 1".into()));
        }
        Ok(p)
    }

    /// The wait before attempt `next` (2 for the first retry). `sample` is a
    /// uniform random number in [0, 1) supplied by the caller.
    pub fn delay_before(&self, next: u32, sample: f64) -> Duration {
        let exp = next.saturating_sub(2).min(64) as i32;
        let base = self.initial.0.as_secs_f64() * self.multiplier.powi(exp);
        let capped = base.min(self.max.0.as_secs_f64());
        let jittered = capped * (1.0 - self.jitter * sample.clamp(0.0, 1.0));
        Duration::from_secs_f64(jittered.max(0.0))
    }

    pub fn exhausted(&self, attempts_made: u32) -> bool {
        attempts_made >= self.attempts
    }
}

/// One failed attempt, as kept with a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AttemptError {
    pub attempt: u32,
    pub at: chrono::DateTime<chrono::Utc>,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 8,
            initial: Span::from_millis(200),
            max: Span::from_millis(1000),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }

    #[test]
    fn delays_double_until_the_cap() {
        let p = policy();
        let ms: Vec<u128> = (2..=6).map(|n| p.delay_before(n, 0.0).as_millis()).collect();
        assert_eq!(ms, vec![200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_only_ever_shortens_a_delay_by_its_fraction() {
        let p = policy();
        assert_eq!(p.delay_before(3, 0.999_999).as_millis(), 200);
        assert!(p.delay_before(3, 0.5) < p.delay_before(3, 0.0));
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let err = RetryPolicy::from_raw(RawRetry { attempts: Some(0), ..Default::default() }).unwrap_err();
        assert_eq!(err.0, "attempts");
        let err = RetryPolicy::from_raw(RawRetry { jitter: Some(2.0), ..Default::default() }).unwrap_err();
        assert_eq!(err.0, "jitter");
    }
}
