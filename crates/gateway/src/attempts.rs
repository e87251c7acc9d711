//! The attempts at one request, whichever way it is carried: an instance
//! for each, what each outcome tells the instance's circuit, and whether
//! another may follow — only on an instance not yet tried, only when the
//! request may safely be sent again, only while the service's retry budget
//! lasts.

use std::{
    fmt::Display,
    sync::Arc,
    time::{Duration, Instant},
};

use herald_http::problem::ApiError;

use crate::registry::{Lease, Refusal, Service, Verdict};

/// How long an answer's headers may take when the service sets no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request may wait for a turn at a service's concurrency limit.
const QUEUE_PATIENCE: Duration = Duration::from_secs(1);

/// An instance's answer, as far as judging it goes.
pub trait Answer {
    fn status(&self) -> u16;
}

impl<B> Answer for hyper::Response<B> {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

pub struct Attempts {
    svc: Arc<Service>,
    retryable: bool,
    tried: Vec<String>,
    /// When the request came, for its duration in `/metrics`.
    started: Instant,
}

impl Attempts {
    /// `retryable`: the request may be sent again (safe, and kept whole).
    pub fn new(svc: Arc<Service>, retryable: bool) -> Self {
        Attempts { svc, retryable, tried: Vec::new(), started: Instant::now() }
    }

    /// How long each attempt may take to bring an answer's headers.
    pub fn timeout(&self) -> Duration {
        self.svc.settings.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The instance for the next attempt. herald's own refusal is a 503
    /// with `Retry-After`: the client's request was not sent anywhere.
    /// A first attempt that finds the service at its concurrency limit
    /// waits its turn up to [`QUEUE_PATIENCE`] (as requests wait in
    /// Envoy's pending queue): a burst is smoothed, not refused.
    pub async fn next(&self) -> Result<Lease, ApiError> {
        let next = self.next_lease().await;
        if let Err(e) = &next {
            self.counted(e.status().as_u16(), true);
        }
        next
    }

    async fn next_lease(&self) -> Result<Lease, ApiError> {
        let refusal = match self.svc.try_admit(&self.tried) {
            Ok(lease) => return Ok(lease),
            // Tried every instance that could take it.
            Err(_) if !self.tried.is_empty() => {
                return Err(ApiError::BadGateway(format!("no instance of {} could answer", self.svc.name)));
            }
            Err(Refusal::AtLimit { .. }) => match self.svc.admit(QUEUE_PATIENCE.min(self.timeout())).await {
                Ok(lease) => return Ok(lease),
                Err(refusal) => refusal,
            },
            Err(refusal) => refusal,
        };
        Err(ApiError::NoInstance {
            detail: refusal.describe(&self.svc.name),
            retry_after: refusal.retry_after().as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    /// Records an attempt's outcome (`None`: it timed out). `Some` is the
    /// answer to give (the lease lives as long as it is being sent); `None`,
    /// try again.
    pub fn judge<A: Answer, E: Display>(
        &mut self,
        lease: Lease,
        outcome: Option<Result<A, E>>,
    ) -> Result<Option<(A, Lease)>, ApiError> {
        let judged = self.judged(lease, outcome);
        match &judged {
            Ok(Some((answer, _))) => self.counted(answer.status(), false),
            Ok(None) => {}
            Err(e) => self.counted(e.status().as_u16(), true),
        }
        judged
    }

    /// The request's answer is going out: counted for `/metrics`.
    fn counted(&self, status: u16, by_herald: bool) {
        self.svc.calls.answered(status, by_herald, self.started.elapsed());
    }

    fn judged<A: Answer, E: Display>(
        &mut self,
        mut lease: Lease,
        outcome: Option<Result<A, E>>,
    ) -> Result<Option<(A, Lease)>, ApiError> {
        let (failure, verdict) = match outcome {
            Some(Ok(answer)) if answer.status() < 500 || !self.retryable => {
                lease.record(Verdict::of_status(answer.status()));
                return Ok(Some((answer, lease)));
            }
            // A 5xx from this instance: another may do better.
            Some(Ok(answer)) => {
                let verdict = Verdict::of_status(answer.status());
                (Failure::Answered(answer), verdict)
            }
            Some(Err(e)) => (Failure::Unreachable(e.to_string()), Verdict::Failed),
            None => (Failure::TimedOut, Verdict::TimedOut),
        };
        lease.record(verdict);
        self.tried.push(lease.instance_id().to_string());
        // Another attempt only where another instance could take it: with
        // none left, the client gets this instance's own answer.
        if self.retryable && self.svc.untried(&self.tried) && self.svc.allow_retry() {
            return Ok(None);
        }
        let svc = &self.svc.name;
        match failure {
            Failure::Answered(answer) => Ok(Some((answer, lease))),
            Failure::Unreachable(e) => {
                tracing::debug!(service = %svc, error = %e, "an instance could not be reached");
                Err(ApiError::BadGateway(format!("{svc} could not be reached")))
            }
            Failure::TimedOut => Err(ApiError::GatewayTimeout(format!(
                "{svc} did not answer within {}",
                humantime::format_duration(self.timeout())
            ))),
        }
    }
}

enum Failure<A> {
    Answered(A),
    Unreachable(String),
    TimedOut,
}
