//! Admission: the one way any call of herald's (a step, a compensation, a
//! pushed event, a webhook, an email, a gateway request) reaches a
//! service. [`Service::try_admit`] takes the breaker's leave, a place
//! under the concurrency limit and an instance in one act, or refuses
//! with when to ask again; no check comes before it that could go stale.
//! A refusal is herald's own: the caller waits, and spends no attempt.
//! [`Service::admit`] waits for a turn, woken as calls end.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use super::{
    Balance, Health, Instance, Service, circuit,
    limit::{self, Signal},
};

/// How long work refused for want of an instance waits before asking again.
const NO_INSTANCE_RETRY: Duration = Duration::from_secs(1);

/// How long work refused by the concurrency limit waits at most before
/// asking again; a call ending wakes it sooner.
const AT_LIMIT_RETRY: Duration = Duration::from_secs(1);

/// Why herald did not make a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The service has no instance (or none not yet tried).
    NoInstance,
    /// Its circuit is open.
    CircuitOpen { retry_after: Duration },
    /// Its circuit is half-open and every probe is out.
    Probing,
    /// As many calls are in flight as its concurrency limit allows.
    AtLimit { limit: u32 },
}

impl Refusal {
    /// When asking again may go better.
    pub fn retry_after(&self) -> Duration {
        match self {
            Refusal::NoInstance => NO_INSTANCE_RETRY,
            Refusal::CircuitOpen { retry_after } => *retry_after,
            Refusal::Probing => circuit::Refused::Probing.retry_after(),
            Refusal::AtLimit { .. } => AT_LIMIT_RETRY,
        }
    }

    /// Nothing will change before `retry_after` (an open circuit's time);
    /// other refusals may end sooner, as calls end or instances register.
    pub fn firm(&self) -> bool {
        matches!(self, Refusal::CircuitOpen { .. })
    }

    /// Why, for a log line or an operator.
    pub fn describe(&self, service: &str) -> String {
        match self {
            Refusal::NoInstance => format!("no instance of {service} can take calls"),
            Refusal::CircuitOpen { .. } => format!("the circuit of {service} is open"),
            Refusal::Probing => format!("the circuit of {service} is half-open and its probes are out"),
            Refusal::AtLimit { limit } => format!("{limit} calls to {service} are in flight, its limit for now"),
        }
    }
}

/// What an answer (or its absence) says about the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It answered, and the answer is not held against it: 2xx, 3xx, 4xx
    /// other than 429.
    Answered,
    /// 429 or 503: it is shedding load. Slow down; nothing is broken.
    Busy,
    /// No answer in time: too much in flight, or broken.
    TimedOut,
    /// 5xx other than 503, or the connection broke mid-call.
    Failed,
    /// No connection could be made: nothing was sent.
    Unreachable,
}

impl Verdict {
    /// The verdict on an HTTP answer's status.
    pub fn of_status(status: u16) -> Verdict {
        match status {
            429 | 503 => Verdict::Busy,
            500..=599 => Verdict::Failed,
            _ => Verdict::Answered,
        }
    }

    /// Counts against the service's circuit and the instance.
    pub fn failed(self) -> bool {
        matches!(self, Verdict::TimedOut | Verdict::Failed | Verdict::Unreachable)
    }

    fn signal(self) -> Signal {
        match self {
            Verdict::Answered => Signal::Success,
            Verdict::Busy | Verdict::TimedOut => Signal::Dropped,
            Verdict::Failed | Verdict::Unreachable => Signal::Ignored,
        }
    }
}

impl Service {
    /// Admits one call now, or says why not. `tried`: instances a request
    /// already failed on, not to be chosen again.
    pub fn try_admit(self: &Arc<Self>, tried: &[String]) -> Result<Lease, Refusal> {
        let now = Instant::now();
        let all = self.instances.read().expect("instances");
        if all.iter().all(|i| tried.contains(&i.id)) {
            return Err(Refusal::NoInstance);
        }
        let (ticket, round) = {
            let mut gate = self.gate.lock().expect("gate");
            let ticket = gate.circuit.admit(now, &self.settings.circuit).map_err(|r| match r {
                circuit::Refused::Open { retry_after } => Refusal::CircuitOpen { retry_after },
                circuit::Refused::Probing => Refusal::Probing,
            })?;
            let Some(round) = gate.limit.acquire() else {
                gate.circuit.release(ticket);
                return Err(Refusal::AtLimit { limit: gate.limit.limit() });
            };
            (ticket, round)
        };
        let instance = self.choose(&all, tried, now).clone();
        instance.in_flight.fetch_add(1, Ordering::Relaxed);
        self.budget.lock().expect("budget").request(now);
        Ok(Lease { service: self.clone(), instance, started: now, ticket, round, answered: false })
    }

    /// Admits one call, waiting up to `patience` for a turn: woken when a
    /// call ends, or when the refusal said to ask again. Answers the last
    /// refusal once the patience is out, or at once when the circuit stays
    /// open past it.
    pub async fn admit(self: &Arc<Self>, patience: Duration) -> Result<Lease, Refusal> {
        let until = tokio::time::Instant::now() + patience;
        loop {
            let refusal = match self.try_admit(&[]) {
                Ok(lease) => return Ok(lease),
                Err(r) => r,
            };
            let now = tokio::time::Instant::now();
            let wake = now + refusal.retry_after();
            // Past the patience, or an open circuit that stays open past it.
            if now >= until || (refusal.firm() && wake > until) {
                return Err(refusal);
            }
            let wake = wake.min(until);
            let turn = self.turn.notified();
            tokio::pin!(turn);
            turn.as_mut().enable();
            // A call may have ended between the refusal and the enabling.
            if let Ok(lease) = self.try_admit(&[]) {
                return Ok(lease);
            }
            let _waiting = Waiting::new(&self.waiting);
            tokio::select! {
                _ = turn => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// An instance not yet tried, by the service's balancing: up (or not
    /// checked) and not ejected, unless too few are (panic mode: all).
    fn choose<'a>(&self, all: &'a [Arc<Instance>], tried: &[String], now: Instant) -> &'a Arc<Instance> {
        let fit = |i: &&Arc<Instance>| {
            i.health() != Health::Down && !i.outlier.lock().expect("outlier").ejected(now) && !tried.contains(&i.id)
        };
        let mut candidates: Vec<&Arc<Instance>> = all.iter().filter(fit).collect();
        let untried = all.iter().filter(|i| !tried.contains(&i.id)).count();
        if self.settings.outlier.panics(candidates.len(), untried) {
            candidates = all.iter().filter(|i| !tried.contains(&i.id)).collect();
        }
        match (self.settings.balance, candidates.len()) {
            (_, 1) => candidates[0],
            (Balance::RoundRobin, n) => candidates[self.next.fetch_add(1, Ordering::Relaxed) % n],
            (Balance::LeastLoaded, n) => {
                // Power of two choices: the less busy of two at random.
                let a = rand::random_range(0..n);
                let b = (a + 1 + rand::random_range(0..n - 1)) % n;
                let load = |i: &Instance| (i.in_flight.load(Ordering::Relaxed), i.latency_us.load(Ordering::Relaxed));
                if load(candidates[a]) <= load(candidates[b]) { candidates[a] } else { candidates[b] }
            }
        }
    }

    /// How many instances are ejected now, and whether one more may be.
    fn may_eject(&self, now: Instant) -> bool {
        let all = self.instances.read().expect("instances");
        let ejected = all.iter().filter(|i| i.outlier.lock().expect("outlier").ejected(now)).count();
        ejected < self.settings.outlier.max_ejected(all.len())
    }

    /// Has it an instance not among `tried`?
    pub fn untried(&self, tried: &[String]) -> bool {
        self.instances.read().expect("instances").iter().any(|i| !tried.contains(&i.id))
    }

    /// Woken when a call to the service ends or it may take calls again.
    pub fn turn(&self) -> tokio::sync::futures::Notified<'_> {
        self.turn.notified()
    }

    /// How many more calls it would admit now (a hint, for sizing work to
    /// fetch: the admission itself decides).
    pub fn room(&self) -> usize {
        if self.instances.read().expect("instances").is_empty() {
            return 0;
        }
        let gate = self.gate.lock().expect("gate");
        if gate.circuit.retry_after(Instant::now()).is_some() {
            return 0;
        }
        gate.limit.limit().saturating_sub(gate.limit.in_flight()) as usize
    }

    /// Tasks waiting their turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Counts a waiter while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call admitted to one instance. Report its answer with
/// [`Lease::finish`]; dropped without one (the caller went away, or
/// never sent it), it counts for nothing.
pub struct Lease {
    service: Arc<Service>,
    instance: Arc<Instance>,
    started: Instant,
    ticket: circuit::Ticket,
    round: limit::Round,
    answered: bool,
}

impl Lease {
    pub fn base(&self) -> &str {
        &self.instance.base
    }

    pub fn instance_id(&self) -> &str {
        &self.instance.id
    }

    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    pub fn finish(mut self, verdict: Verdict) {
        self.record(verdict);
    }

    /// As [`Lease::finish`], keeping the lease (it counts the call as in
    /// flight until dropped: a streamed answer is still being sent).
    pub fn record(&mut self, verdict: Verdict) {
        if self.answered {
            return;
        }
        self.answered = true;
        let (i, svc) = (&self.instance, &self.service);
        let now = Instant::now();
        let took = now.duration_since(self.started).as_micros() as u64;
        let old = i.latency_us.load(Ordering::Relaxed);
        i.latency_us.store(if old == 0 { took } else { (old * 4 + took) / 5 }, Ordering::Relaxed);
        i.requests.fetch_add(1, Ordering::Relaxed);
        let failed = verdict.failed();
        if failed {
            i.failures.fetch_add(1, Ordering::Relaxed);
        }
        let may_eject = failed && svc.may_eject(now);
        i.outlier.lock().expect("outlier").record(failed, now, &svc.settings.outlier, may_eject);
        let closed = {
            let mut gate = svc.gate.lock().expect("gate");
            let was = gate.circuit.state();
            gate.circuit.record(self.ticket, failed, now, &svc.settings.circuit);
            gate.limit.answered(verdict.signal(), self.round);
            was != circuit::State::Closed && gate.circuit.state() == circuit::State::Closed
        };
        if closed {
            svc.turn.notify_waiters();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.instance.in_flight.fetch_sub(1, Ordering::Relaxed);
        {
            let mut gate = self.service.gate.lock().expect("gate");
            if !self.answered {
                gate.circuit.release(self.ticket);
            }
            gate.limit.release();
        }
        self.service.turn.notify_one();
    }
}
