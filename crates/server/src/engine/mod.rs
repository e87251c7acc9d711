//! The engine: runs due tasks (start, step calls, compensations, timers)
//! and turns each answer into one state-machine transition in the store.
//!
//! Work created by a transition and due now is leased to this node in the
//! same commit and started straight from memory; only future work (retry
//! backoffs, timers) and work left by a crash is found by the poller. No
//! lock is held across a service call: the store serialises transitions.
//!
//! - [`invoke`] — one HTTP call of a step's service.
//! - `events` — `publish` steps' events, and events arriving for `await` steps.
//! - [`tokens`] — callback tokens.

mod deliver;
mod events;
pub mod invoke;
pub mod tokens;

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use herald_core::{
    Command, Operation, OperationId, TaskKind,
    machine::{self, InvokeCheck, Outcome, Rejection},
    task::Phase,
    workflow::{Action, Workflow},
};
use herald_store::{Accepted, Applied, NewOperation, Store, Task, TaskId, TransitionResult};
use tokio::sync::{Notify, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{config::EngineConfig, hub::Hub, workflows::Workflows};
use tokens::Tokens;

/// How often a call whose service has no instance at all looks again.
const UNAVAILABLE_RECHECK: Duration = Duration::from_secs(1);

/// Tasks claimed per poll.
const CLAIM_BATCH: usize = 256;

#[derive(Clone)]
pub struct Engine(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    broker: Arc<dyn herald_broker::Broker>,
    workflows: Arc<Workflows>,
    hub: Hub<OperationId, herald_core::Event>,
    inbox: Hub<String, herald_core::notify::InboxChange>,
    services: Arc<crate::registry::Registry>,
    tokens: Tokens,
    public_url: String,
    config: EngineConfig,
    wake: Notify,
    /// When the poller will next look on its own (ms since epoch).
    sleeping_until: AtomicI64,
    in_flight: Semaphore,
    webhook: Option<deliver::Webhook>,
    email: Option<deliver::Email>,
    tracker: TaskTracker,
    stopping: CancellationToken,
}

pub struct Parts {
    pub webhook: Option<crate::config::WebhookConfig>,
    pub email: Option<crate::config::EmailConfig>,
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn herald_broker::Broker>,
    pub workflows: Arc<Workflows>,
    pub services: Arc<crate::registry::Registry>,
    pub tokens: Tokens,
    pub public_url: String,
    pub config: EngineConfig,
}

impl Engine {
    pub fn new(p: Parts) -> anyhow::Result<Self> {
        let webhook = match p.webhook.map(deliver::Webhook::new).transpose()? {
            Some((hook, service)) => {
                p.services.add(deliver::WEBHOOK_SERVICE, &service)?;
                Some(hook)
            }
            None => None,
        };
        let email = p.email.map(deliver::Email::new).transpose()?;
        Ok(Engine(Arc::new(Inner {
            store: p.store,
            broker: p.broker,
            workflows: p.workflows,
            hub: Hub::default(),
            inbox: Hub::default(),
            services: p.services,
            tokens: p.tokens,
            public_url: p.public_url.trim_end_matches('/').to_string(),
            in_flight: Semaphore::new(p.config.max_in_flight.max(1)),
            config: p.config,
            wake: Notify::new(),
            sleeping_until: AtomicI64::new(0),
            tracker: TaskTracker::new(),
            stopping: CancellationToken::new(),
            webhook,
            email,
        })))
    }

    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub fn broker(&self) -> &Arc<dyn herald_broker::Broker> {
        &self.0.broker
    }

    pub fn services(&self) -> &Arc<crate::registry::Registry> {
        &self.0.services
    }

    /// Timeline events, by operation.
    pub fn hub(&self) -> &Hub<OperationId, herald_core::Event> {
        &self.0.hub
    }

    /// Inbox changes, by subject.
    pub fn inbox(&self) -> &Hub<String, herald_core::notify::InboxChange> {
        &self.0.inbox
    }

    pub fn workflows(&self) -> &Workflows {
        &self.0.workflows
    }

    pub fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }

    /// How long calls in flight may finish at shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        self.0.config.shutdown_grace.0
    }

    /// Accepting operations but running nothing (see `engine.paused`).
    pub fn is_paused(&self) -> bool {
        self.0.config.paused
    }

    /// Cancelled when the server begins to shut down (ends live streams).
    pub fn stopping(&self) -> CancellationToken {
        self.0.stopping.clone()
    }

    pub async fn accept(&self, new: NewOperation) -> herald_store::Result<Accepted> {
        let accepted = self.0.store.accept(new).await?;
        if let Accepted::Created(applied) = &accepted {
            self.after_commit(applied);
        }
        Ok(accepted)
    }

    /// One command, applied to the operation's current state in one transaction.
    pub async fn apply(
        &self,
        id: &OperationId,
        consume: Option<TaskId>,
        cmd: Command,
    ) -> herald_store::Result<TransitionResult> {
        let workflows = self.0.workflows.clone();
        let now = Utc::now();
        let f = Box::new(move |op: &mut Operation| {
            let wf = workflows
                .version(&op.workflow, op.version)
                .ok_or_else(|| Rejection::UnknownWorkflow(op.workflow.clone()))?;
            machine::apply(op, &wf, cmd, now)
        });
        let result = self.0.store.transition(id, consume, f).await?;
        if let TransitionResult::Applied(applied) = &result {
            self.after_commit(applied);
        }
        Ok(result)
    }

    /// Tells watchers and starts the work a commit created.
    fn after_commit(&self, applied: &Applied) {
        if applied.events.iter().any(|e| matches!(e.kind, herald_core::EventKind::Redacted { .. })) {
            let store = self.0.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.erase_residue().await {
                    tracing::error!(error = %e, "erased data may linger on disk until the next checkpoint");
                }
            });
        }
        let ended = applied.events.iter().any(|e| e.kind.is_final());
        self.0.hub.publish(&applied.op.id, applied.events.iter().cloned(), ended);
        if let Some(inbox) = &applied.inbox {
            let (subject, change) = &**inbox;
            self.0.inbox.publish(subject, [change.clone()], false);
        }
        for task in &applied.tasks {
            let snapshot = (task.op == applied.op.id).then(|| applied.op.clone());
            self.schedule(task.clone(), snapshot);
        }
        for other in &applied.others {
            self.after_commit(other);
        }
    }

    /// A notification's dead letter, sent again from its first attempt.
    pub async fn redrive_delivery(
        &self,
        dead_letter: i64,
        op: &OperationId,
        channel: herald_core::notify::Channel,
        payload: serde_json::Value,
    ) -> herald_store::Result<bool> {
        let kind = TaskKind::Deliver { channel, attempt: 1, payload };
        match self.0.store.redrive_task(dead_letter, op, kind).await? {
            Some(task) => {
                self.schedule(task, None);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn schedule(&self, task: Task, snapshot: Option<Arc<Operation>>) {
        if self.0.config.paused {
            return; // held tasks are given back at shutdown
        }
        if !task.owned {
            if task.due.timestamp_millis() < self.0.sleeping_until.load(Ordering::Relaxed) {
                self.0.wake.notify_one();
            }
            return;
        }
        if self.0.stopping.is_cancelled() {
            return; // released to the store at shutdown
        }
        let this = self.clone();
        self.0.tracker.spawn(async move {
            let id = task.id;
            if let Err(e) = this.run(task, snapshot).await {
                tracing::warn!(task = id, error = %e, "a task failed; it runs again when its lease ends");
            }
        });
    }

    async fn run(&self, task: Task, snapshot: Option<Arc<Operation>>) -> herald_store::Result<()> {
        let cmd = match task.kind.clone() {
            TaskKind::Start => Command::Start,
            TaskKind::Timer { timer } => Command::Timer(timer),
            TaskKind::Deliver { channel, attempt, payload } => {
                return self.deliver(task, channel, attempt, payload).await;
            }
            TaskKind::Invoke { step, attempt, phase } => {
                return self.invoke(task, step, attempt, phase, snapshot).await;
            }
        };
        self.apply(&task.op, Some(task.id), cmd).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(operation_id = %task.op, step = %step, attempt, ?phase))]
    async fn invoke(
        &self,
        task: Task,
        step: String,
        attempt: u32,
        phase: Phase,
        snapshot: Option<Arc<Operation>>,
    ) -> herald_store::Result<()> {
        let op = match snapshot {
            Some(op) => op,
            None => match self.0.store.get(&task.op).await? {
                Some(op) => Arc::new(op),
                None => return Ok(()),
            },
        };
        let check = machine::check_invoke(&op, &step, attempt, phase);
        if check != InvokeCheck::Stale
            && let Some(wait) = self.unavailable(&op, &step, phase)
        {
            return self.defer(task, wait).await;
        }
        let op = match check {
            InvokeCheck::Current => op,
            InvokeCheck::Stale => return self.apply(&task.op, Some(task.id), Command::Discard).await.map(drop),
            InvokeCheck::Begin => {
                let begun =
                    self.apply(&task.op, None, Command::AttemptStarted { step: step.clone(), attempt, phase }).await?;
                match begun {
                    TransitionResult::Applied(a)
                        if machine::check_invoke(&a.op, &step, attempt, phase) == InvokeCheck::Current =>
                    {
                        a.op
                    }
                    _ => return self.apply(&task.op, Some(task.id), Command::Discard).await.map(drop),
                }
            }
        };
        let outcome = self.call(&op, &step, attempt, phase).await;
        let sample = rand::random::<f64>();
        self.apply(&task.op, Some(task.id), Command::Result { step, attempt, phase, outcome, sample }).await.map(drop)
    }

    /// The step's workflow and index, or why it cannot be called.
    fn resolve(&self, op: &Operation, step: &str) -> Result<(Arc<Workflow>, usize), String> {
        let Some(wf) = self.0.workflows.version(&op.workflow, op.version) else {
            return Err(format!("workflow {} version {} is not loaded", op.workflow, op.version));
        };
        let Some(ix) = wf.step_index(step) else { return Err(format!("the workflow has no step {step}")) };
        Ok((wf, ix))
    }

    /// When a call step's service has no instance that could take the call
    /// (every circuit open or every instance down), how long to wait before
    /// looking again. Waiting spends no attempt: a service that is down for
    /// a minute does not use up a step's retries, as Temporal's activities
    /// wait in their queue for a worker. The step's timers still run, so
    /// the user hears it is late and a deadline still ends it.
    fn unavailable(&self, op: &Operation, step: &str, phase: Phase) -> Option<Duration> {
        let (wf, ix) = self.resolve(op, step).ok()?;
        let def = &wf.steps[ix];
        let action = match phase {
            Phase::Forward => &def.action,
            Phase::Compensation => &def.compensate.as_ref()?.action,
        };
        let Action::Call(call) = action else { return None };
        self.service_unavailable(&call.service)
    }

    /// How long to wait before looking again when `service` has no
    /// instance that could take a call now.
    fn service_unavailable(&self, service: &str) -> Option<Duration> {
        let no = self.0.services.service(service)?.available().err()?;
        Some(no.retry_after.unwrap_or(UNAVAILABLE_RECHECK).clamp(Duration::from_millis(50), UNAVAILABLE_RECHECK))
    }

    async fn defer(&self, task: Task, wait: Duration) -> herald_store::Result<()> {
        tracing::debug!(task = task.id, ?wait, "no instance can take the call; waiting without spending an attempt");
        let due = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        if self.0.store.retry_task(task.id, task.kind.clone(), due).await? {
            self.schedule(Task { due, owned: false, ..task }, None);
        }
        Ok(())
    }

    async fn call(&self, op: &Operation, step: &str, attempt: u32, phase: Phase) -> Outcome {
        let permanent = |error: String| Outcome::Failed { error, retryable: false, maybe_applied: false };
        let (wf, ix) = match self.resolve(op, step) {
            Ok(found) => found,
            Err(error) => return permanent(error),
        };
        let def = &wf.steps[ix];
        let action = match (phase, &def.compensate) {
            (Phase::Forward, _) => &def.action,
            (Phase::Compensation, Some(c)) => &c.action,
            (Phase::Compensation, None) => return permanent("the step has no compensation".into()),
        };
        let call = match action {
            Action::Call(call) => call,
            Action::Publish(p) => return self.publish_step(op, step, attempt, phase, p).await,
            Action::Await(_) => return permanent("an await step waits for its event; nothing is called".into()),
        };
        let Some(service) = self.0.services.service(&call.service) else {
            return permanent(format!("service {} is not registered", call.service));
        };
        let lease = match service.pick(&[]) {
            Ok(lease) => lease,
            Err(_) => {
                let error = format!("no instance of {} can take calls now", call.service);
                return Outcome::Failed { error, retryable: true, maybe_applied: false };
            }
        };
        let id = op.id.to_string();
        let callback = (phase == Phase::Forward).then(|| invoke::Callback {
            url: format!("{}/v1/operations/{id}/steps/{step}:complete", self.0.public_url),
            token: self.0.tokens.issue(&id, step),
        });
        let body = serde_json::to_vec(&invoke::envelope(op, step, attempt, phase, callback)).unwrap_or_default();
        let idempotency_key = match phase {
            Phase::Forward => format!("{id}/{step}"),
            Phase::Compensation => format!("{id}/{step}/compensate"),
        };
        let timeout = service.settings.timeout.map_or(def.timeout.0, |c| c.min(def.timeout.0));
        let traceparent = format!("00-{}-{:016x}-01", &id[3..], rand::random::<u64>() | 1);
        let signature = service.signature(&body);
        let _permit = self.0.in_flight.acquire().await;
        let req = invoke::Request { base: lease.base(), call, timeout, idempotency_key, traceparent, signature, body };
        let (outcome, healthy) = invoke::call(service.client(), req).await;
        lease.finish(healthy);
        outcome
    }

    /// Finds due work nobody announced: timers, retries, a crashed run's tasks.
    pub fn spawn_poller(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.poll().await })
    }

    async fn poll(&self) {
        if self.0.config.paused {
            return;
        }
        let interval = self.0.config.poll_interval.as_chrono();
        loop {
            if self.0.stopping.is_cancelled() {
                return;
            }
            match self.0.store.claim_due(CLAIM_BATCH).await {
                Ok(tasks) => {
                    let full = tasks.len() == CLAIM_BATCH;
                    for t in tasks {
                        self.schedule(t, None);
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => tracing::error!(error = %e, "claiming due tasks failed"),
            }
            let cap = Utc::now() + interval;
            let until = match self.0.store.next_due().await {
                Ok(Some(due)) => due.min(cap),
                _ => cap,
            };
            self.0.sleeping_until.store(until.timestamp_millis(), Ordering::Relaxed);
            let wait = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.0.wake.notified() => {}
                _ = self.0.stopping.cancelled() => return,
            }
        }
    }

    /// Stops taking work, lets calls in flight finish (up to the grace
    /// period), then hands every held task back to the store.
    pub async fn shutdown(&self) {
        self.0.stopping.cancel();
        self.0.tracker.close();
        if tokio::time::timeout(self.0.config.shutdown_grace.0, self.0.tracker.wait()).await.is_err() {
            tracing::warn!("calls still in flight at shutdown; their tasks run again at next start");
        }
        if let Err(e) = self.0.store.release().await {
            tracing::error!(error = %e, "could not release tasks at shutdown");
        }
    }
}
