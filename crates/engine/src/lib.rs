//! herald's engine: runs due tasks (start, step calls, compensations,
//! timers) and turns each answer into one state-machine transition in the
//! store.
//!
//! Work created by a transition and due now is leased to this node in the
//! same commit and started straight from memory; only future work (retry
//! backoffs, timers) and work left by a crash is found by the poller. No
//! lock is held across a service call: the store serialises transitions.
//!
//! # Layout
//!
//! - [`Engine`] (here) — the task loop and its one transition per answer.
//! - [`start`] — `Engine::start(StartRequest)`: a new operation, from
//!   whichever door it came in.
//! - [`invoke`] — one HTTP call of a step's service.
//! - `events` — `publish` steps' events, and events arriving for `await` steps.
//! - `hints` — acting on what other nodes sharing the store changed.
//! - [`tokens`] — callback tokens: per attempt, with an expiry.
//! - [`instances`] — service instances registered at run time: stored for
//!   every node, and this node's registry refreshed from the store.
//! - `turn` — waiting for a service to take a call, without spending attempts.
//! - [`notify`] — telling people: the live hub, webhooks and email.
//! - `spans` — an operation's spans, written as what each describes ends.
//! - `residue` — erasing what redacted data leaves on disk, once per burst.
//! - [`dispatch`] — delivers push subscriptions' events (and `await` steps').
//! - [`workflows`] — loading and checking workflow files; every known version.
//! - [`subscriptions`] — the subscriptions herald starts with.
//! - [`config`] — `[engine]`, `[webhook]` and `[email]`.

pub mod config;
pub mod dispatch;
mod events;
mod flow_times;
mod hints;
pub mod instances;
pub mod invoke;
pub mod notify;
mod residue;
mod spans;
pub mod start;
pub mod subscriptions;
pub mod tokens;
mod turn;
pub mod workflows;

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

use config::EngineConfig;
use herald_gateway::registry::{Registry, Service, Verdict};
use notify::{deliver, hub::Hub};
use tokens::Tokens;
use workflows::Workflows;

/// How long a task whose operation cannot be read is set aside.
const UNREADABLE_AGAIN: chrono::Duration = chrono::Duration::hours(1);

/// Tasks claimed per poll.
const CLAIM_BATCH: usize = 256;

/// How often a transition runs again after losing a race (a deadlock with
/// another node's write); past that it fails, and a task's transition runs
/// again when its lease ends.
const RACED_TRANSITION_TRIES: usize = 3;

/// A failure no retry can mend.
fn permanent(error: String) -> Outcome {
    Outcome::Failed { error, retryable: false, maybe_applied: false, retry_after: None }
}

#[derive(Clone)]
pub struct Engine(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    broker: Arc<dyn herald_broker::Broker>,
    workflows: Arc<Workflows>,
    hub: Hub<OperationId, herald_core::Event>,
    inbox: Hub<String, herald_core::notify::InboxChange>,
    services: Arc<Registry>,
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
    residue: Arc<residue::Residue>,
    /// Registrations and registry refreshes take turns (`instances`).
    registrations: tokio::sync::Mutex<()>,
    metrics: Arc<herald_metrics::Metrics>,
    tracer: herald_trace::Tracer,
    flow_times: flow_times::FlowTimes,
}

pub struct Parts {
    pub webhook: Option<config::WebhookConfig>,
    pub email: Option<config::EmailConfig>,
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn herald_broker::Broker>,
    pub workflows: Arc<Workflows>,
    pub services: Arc<Registry>,
    pub tokens: Tokens,
    pub public_url: String,
    pub config: EngineConfig,
    pub tracer: herald_trace::Tracer,
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
        let email = match p.email.map(deliver::Email::new).transpose()? {
            Some((email, service)) => {
                p.services.add(deliver::EMAIL_SERVICE, &service)?;
                Some(email)
            }
            None => None,
        };
        let metrics = p.services.metrics().clone();
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
            residue: Arc::default(),
            registrations: tokio::sync::Mutex::new(()),
            metrics,
            tracer: p.tracer,
            flow_times: Default::default(),
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

    pub fn services(&self) -> &Arc<Registry> {
        &self.0.services
    }

    /// What this herald counts, for `/metrics`.
    pub fn metrics(&self) -> &Arc<herald_metrics::Metrics> {
        &self.0.metrics
    }

    /// Where spans go (nowhere unless OTLP is configured).
    pub fn tracer(&self) -> &herald_trace::Tracer {
        &self.0.tracer
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
        let mut races = 0;
        // A choice for an `ask` operation may supersede others with it.
        let decides = matches!(cmd, Command::Decide { .. } | Command::Timer(herald_core::Timer::DecisionDue));
        let cmd = Arc::new(cmd);
        let result = loop {
            let (workflows, cmd) = (self.0.workflows.clone(), cmd.clone());
            let now = Utc::now();
            let f = Box::new(move |op: &mut Operation| {
                let wf = workflows
                    .version(&op.workflow, op.version)
                    .ok_or_else(|| Rejection::UnknownWorkflow(op.workflow.clone()))?;
                machine::apply(op, &wf, (*cmd).clone(), now)
            });
            let written = if decides {
                self.0.store.decide(id, consume, f, self.superseder(id.clone(), now)).await
            } else {
                self.0.store.transition(id, consume, f).await
            };
            // A transition that lost a race with another node's write (a
            // deadlock between the two) was rolled back whole: it runs
            // again on the state the other left.
            match written {
                Err(herald_store::Error::Raced(e)) if races < RACED_TRANSITION_TRIES => {
                    races += 1;
                    tracing::debug!(operation_id = %id, error = %e, "a transition lost a race; running it again");
                }
                other => break other?,
            }
        };
        if let (Some(task), TransitionResult::Missing) = (consume, &result) {
            // Its lease ran out and the task was claimed again (by another
            // node, or by this one after a pause): that claim's attempt
            // decides, and this one's result is dropped.
            tracing::warn!(operation_id = %id, %task, "a late write was refused: the task was consumed, or its lease had moved on");
        }
        if let TransitionResult::Applied(applied) = &result {
            self.after_commit(applied);
        }
        Ok(result)
    }

    /// Tells watchers and starts the work a commit created.
    fn after_commit(&self, applied: &Applied) {
        if applied.events.iter().any(|e| matches!(e.kind, herald_core::EventKind::Redacted { .. })) {
            self.0.residue.erase(&self.0.store);
        }
        self.0.metrics.operations.commit(&applied.op, &applied.events);
        spans::commit(&self.0.tracer, &applied.op, &applied.events, applied.inbox.is_some());
        let ended = applied.events.iter().any(|e| e.kind.is_final());
        if ended {
            self.0.flow_times.ended(&applied.op.workflow);
        }
        self.0.hub.publish(&applied.op.id, applied.events.iter().cloned(), ended);
        if let Some(inbox) = &applied.inbox {
            self.0.metrics.operations.notified("inbox", "delivered");
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
            let (id, kind) = (task.id, task.kind.clone());
            match this.run(task, snapshot).await {
                Ok(()) => {}
                Err(herald_store::Error::Corrupt(e)) => this.set_aside(id, kind, e).await,
                Err(e) => tracing::warn!(task = %id, error = %e, "a task failed; it runs again when its lease ends"),
            }
        });
    }

    /// A task whose operation cannot be read would fail at every lease:
    /// it is reported and set aside for an hour (time to mend the row)
    /// instead, so it costs nothing meanwhile.
    async fn set_aside(&self, id: TaskId, kind: TaskKind, error: String) {
        tracing::error!(task = %id, %error, "a task's stored data cannot be read; it is set aside for an hour");
        if let Err(e) = self.0.store.retry_task(id, kind, Utc::now() + UNREADABLE_AGAIN).await {
            tracing::warn!(task = %id, error = %e, "setting the task aside failed; it runs again when its lease ends");
        }
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

    #[tracing::instrument(skip_all, fields(operation_id = %task.op, step = %step, attempt, ?phase, workflow, trace_id))]
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
        let mut check = machine::check_invoke(&op, &step, attempt, phase);
        if check == InvokeCheck::Stale {
            return self.apply(&task.op, Some(task.id), Command::Discard).await.map(drop);
        }
        let at = turn::Attempt { task: &task, step: &step, attempt, phase };
        let (wf, ix) = match self.resolve(&op, &step) {
            Ok(found) => found,
            Err(error) => return self.fail(at, op, check, error).await,
        };
        let def = &wf.steps[ix];
        let action = match (phase, &def.compensate) {
            (Phase::Forward, _) => &def.action,
            (Phase::Compensation, Some(c)) => &c.action,
            (Phase::Compensation, None) => {
                let error = "the step has no compensation".into();
                return self.fail(at, op, check, error).await;
            }
        };
        let call = match action {
            Action::Call(call) => call,
            Action::Publish(p) => {
                let Some(op) = self.begin(at, op, check).await? else { return Ok(()) };
                let outcome = self.publish_step(&op, &step, attempt, phase, p).await;
                return self.record(at, outcome).await;
            }
            Action::Await(_) => {
                let error = "an await step waits for its event; nothing is called".into();
                return self.fail(at, op, check, error).await;
            }
        };
        let Some(service) = self.0.services.service(&call.service) else {
            let error = format!("service {} is not registered", call.service);
            return self.fail(at, op, check, error).await;
        };
        let cx = spans::context(&op);
        let here = tracing::Span::current();
        here.record("workflow", op.workflow.as_str()).record("trace_id", format_args!("{:032x}", cx.trace_id));
        let began = std::time::SystemTime::now();
        let lease = match self.turn(&service, &task, Some(at)).await? {
            turn::Turn::Go { lease, told } => {
                if told {
                    check = InvokeCheck::Begin; // shown waiting: the attempt begins anew
                }
                lease
            }
            turn::Turn::Later => return Ok(()),
        };
        let Some(op) = self.begin(at, op, check).await? else { return Ok(()) };
        let parent = spans::phase_span(&cx, &op, &step, phase);
        spans::waited(&self.0.tracer, &cx, &op, parent, &service.name, began);
        let (req, span) = self.request(&op, at, def, call, &service, lease.base());
        let sent = self.0.tracer.is_on().then(|| (std::time::SystemTime::now(), req.url.clone()));
        let _permit = self.0.in_flight.acquire().await;
        let (outcome, verdict) = invoke::call(service.client(), req).await;
        if let Some((start, url)) = sent {
            let mut s = herald_trace::Span::under(&cx, parent, format!("call {step}"), herald_trace::SpanKind::Client);
            (s.id, s.start, s.end) = (span, start, std::time::SystemTime::now());
            s.attributes =
                spans::call_attributes(&op, (&step, attempt, phase), call.method.as_str(), &url, &service.name);
            if let Outcome::Failed { error, .. } = &outcome {
                s.error = Some(error.clone());
            }
            self.0.tracer.record(s);
        }
        lease.finish(verdict);
        tracing::debug!(?verdict, "the call is over");
        if verdict == Verdict::Unreachable {
            // Nothing was sent: the attempt is not spent; the step waits.
            self.wait_for(at, &service.name).await?;
            return self.defer(task, turn::UNREACHABLE_RECHECK).await;
        }
        self.record(at, outcome).await
    }

    /// The operation with this attempt begun: a retry (or a step that
    /// waited) is shown started first. `None` when it no longer applies
    /// (its task is consumed).
    async fn begin(
        &self,
        at: turn::Attempt<'_>,
        op: Arc<Operation>,
        check: InvokeCheck,
    ) -> herald_store::Result<Option<Arc<Operation>>> {
        if check == InvokeCheck::Current {
            return Ok(Some(op));
        }
        let cmd = Command::AttemptStarted { step: at.step.to_string(), attempt: at.attempt, phase: at.phase };
        match self.apply(&at.task.op, None, cmd).await? {
            TransitionResult::Applied(a)
                if machine::check_invoke(&a.op, at.step, at.attempt, at.phase) == InvokeCheck::Current =>
            {
                Ok(Some(a.op))
            }
            _ => self.apply(&at.task.op, Some(at.task.id), Command::Discard).await.map(|_| None),
        }
    }

    /// Begins the attempt and fails it for good: nothing can be called.
    async fn fail(
        &self,
        at: turn::Attempt<'_>,
        op: Arc<Operation>,
        check: InvokeCheck,
        error: String,
    ) -> herald_store::Result<()> {
        if self.begin(at, op, check).await?.is_none() {
            return Ok(());
        }
        self.record(at, permanent(error)).await
    }

    /// Records an attempt's outcome, consuming its task.
    async fn record(&self, at: turn::Attempt<'_>, outcome: Outcome) -> herald_store::Result<()> {
        let (step, attempt, phase, sample) = (at.step.to_string(), at.attempt, at.phase, rand::random::<f64>());
        let cmd = Command::Result { step, attempt, phase, outcome, sample };
        self.apply(&at.task.op, Some(at.task.id), cmd).await.map(drop)
    }

    /// The step's workflow and index, or why it cannot be called.
    fn resolve(&self, op: &Operation, step: &str) -> Result<(Arc<Workflow>, usize), String> {
        let Some(wf) = self.0.workflows.version(&op.workflow, op.version) else {
            return Err(format!("workflow {} version {} is not loaded", op.workflow, op.version));
        };
        let Some(ix) = wf.step_index(step) else { return Err(format!("the workflow has no step {step}")) };
        Ok((wf, ix))
    }

    /// The request of one call of a step's service, and its span's id.
    fn request<'a>(
        &self,
        op: &Operation,
        at: turn::Attempt<'_>,
        def: &herald_core::workflow::Step,
        call: &'a herald_core::workflow::Call,
        service: &Service,
        base: &str,
    ) -> (invoke::Request<'a>, u64) {
        let (step, attempt, phase) = (at.step, at.attempt, at.phase);
        let id = op.id.to_string();
        let callback = (phase == Phase::Forward).then(|| invoke::Callback {
            url: format!("{}/v1/operations/{id}/steps/{step}:complete", self.0.public_url),
            token: self.0.tokens.issue(&id, step, attempt, tokens::expiry(op, step, def.deadline, Utc::now())),
        });
        let body = serde_json::to_vec(&invoke::envelope(op, step, attempt, phase, callback)).unwrap_or_default();
        let idempotency_key = match phase {
            Phase::Forward => format!("{id}/{step}"),
            Phase::Compensation => format!("{id}/{step}/compensate"),
        };
        let timeout = service.settings.timeout.map_or(def.timeout.0, |c| c.min(def.timeout.0));
        let url = format!("{base}{}", call.path);
        let signature = service.signature(call.method.as_str(), &url, &body);
        // The call's client span, named before the call is made.
        let span = herald_trace::new_id();
        let cx = spans::context(op);
        let traceparent = cx.child(span).to_string();
        let tracestate = cx.state;
        let lang = op.lang.clone();
        (invoke::Request { call, url, timeout, idempotency_key, traceparent, tracestate, signature, lang, body }, span)
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
