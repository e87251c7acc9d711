//! The retry budget: a service's retries may add at most a share of its
//! requests (plus a few when it is quiet), so retrying cannot multiply the
//! load on a service that is already failing.

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(10);
/// Retries allowed per window whatever the traffic, so a quiet service can
/// still have its rare failed request retried.
const FLOOR: u32 = 10;

pub struct Budget {
    start: Instant,
    requests: u32,
    retries: u32,
}

impl Budget {
    pub fn new(now: Instant) -> Self {
        Budget { start: now, requests: 0, retries: 0 }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.start) >= WINDOW {
            *self = Budget::new(now);
        }
    }

    pub fn request(&mut self, now: Instant) {
        self.roll(now);
        self.requests = self.requests.saturating_add(1);
    }

    /// Takes one retry from the budget, if `ratio` of the window's requests allows.
    pub fn retry(&mut self, now: Instant, ratio: f64) -> bool {
        self.roll(now);
        let allowed = FLOOR.max((f64::from(self.requests) * ratio) as u32);
        if self.retries < allowed {
            self.retries += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stay_within_a_share_of_the_requests() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0);
        for _ in 0..1000 {
            b.request(t0);
        }
        let granted = (0..1000).filter(|_| b.retry(t0, 0.2)).count();
        assert_eq!(granted, 200);
        assert!(b.retry(t0 + WINDOW, 0.2), "a new window, a new budget");
    }
}
