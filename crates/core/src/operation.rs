//! The operation: one run of a workflow, as stored and as shown to users.
//! Its state is a pure function of its timeline; we keep it materialised so
//! reads cost one row.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::{OperationId, workflow::Workflow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    Accepted,
    /// It collided with a running operation (`on_conflict = "ask"`) and
    /// waits for its user to choose (`decision`).
    AwaitingDecision,
    Running,
    Compensating,
    Succeeded,
    Failed,
    Cancelled,
}

impl OpStatus {
    pub fn is_final(self) -> bool {
        matches!(self, OpStatus::Succeeded | OpStatus::Failed | OpStatus::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Accepted => "accepted",
            OpStatus::AwaitingDecision => "awaiting_decision",
            OpStatus::Running => "running",
            OpStatus::Compensating => "compensating",
            OpStatus::Succeeded => "succeeded",
            OpStatus::Failed => "failed",
            OpStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Accepted,
            Self::AwaitingDecision,
            Self::Running,
            Self::Compensating,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Retrying,
    /// Its next attempt waits for its service to take calls (no instance,
    /// an open circuit, herald's concurrency limit): no attempt is spent
    /// while it waits (`waiting_for` names the service).
    Waiting,
    /// Failed for good with `on_failure = "hold"`: the operation waits for a
    /// person to redrive the step (its dead letter) or to cancel.
    Held,
    Succeeded,
    Failed,
    Skipped,
    Compensating,
    Compensated,
    CompensationFailed,
}

/// A compensation's progress, once it has begun.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompensationRun {
    pub attempts: u32,
    /// Attempts made before the last redrive; the retry policy counts from here.
    #[serde(default)]
    pub base: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// When this round of undoing began (its span's start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepRun {
    pub name: String,
    /// What the user is told while it runs ("Charging your card").
    pub label: String,
    /// What the user is told when it is done ("Card charged").
    pub done_label: String,
    /// Steps with the same stage run in parallel.
    pub stage: usize,
    pub status: StepState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expected_by: Option<DateTime<Utc>>,
    pub delayed: bool,
    /// The step waits on something outside: a callback (its service
    /// answered 202) or, for an `await` step, an event.
    pub awaiting_callback: bool,
    /// The step did not succeed, but its work may have happened (a timeout,
    /// a cancelled wait), so it is compensated like a completed step.
    pub maybe_applied: bool,
    /// Labels of the step's compensation; `None` when it cannot be undone.
    pub undo: Option<UndoLabels>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub compensation: Option<CompensationRun>,
    /// Attempts made before the last redrive; the retry policy counts from here.
    #[serde(default)]
    pub retry_base: u32,
    /// An event an `await` step matched before it began waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<Value>,
    /// The service whose turn the step's next call (or compensation call)
    /// waits for; `None` when it is not waiting. Still set while the
    /// attempt that ends the wait is out: that attempt is told with its
    /// answer, so a try that cannot connect is not news.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

impl StepRun {
    /// Attempts made since the step began, or since its last redrive.
    pub fn attempts_this_round(&self) -> u32 {
        self.attempts.saturating_sub(self.retry_base)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UndoLabels {
    pub label: String,
    pub done_label: String,
}

/// What an `awaiting_decision` operation's user is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// The running operation it collided with; not shown to an end user
    /// unless the key is their own (`key = "subject"`): it may be another's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<OperationId>,
    /// When `default` is chosen for the user.
    pub due_at: DateTime<Utc>,
    pub default: crate::concurrency::Choice,
}

/// Why an operation is being wound down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ending {
    Failed { step: Option<String>, reason: String },
    Cancelled { reason: String },
}

/// The final, honest account of what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outcome {
    pub status: OpStatus,
    /// One sentence for the user.
    pub summary: String,
    pub succeeded: Vec<String>,
    pub undone: Vec<String>,
    pub not_undone: Vec<NotUndone>,
    pub failed_step: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotUndone {
    pub step: String,
    pub label: String,
    pub reason: String,
    /// Undoing it was tried and failed: a person must look.
    pub needs_attention: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operation {
    pub id: OperationId,
    pub workflow: String,
    pub version: u32,
    /// What the user is told this is ("Your order").
    pub label: String,
    pub subject: Option<String>,
    pub status: OpStatus,
    /// Something is past its expected time: the user has been told.
    pub delayed: bool,
    /// Something could not be undone: a person must look.
    pub needs_attention: bool,
    pub input: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expected_by: Option<DateTime<Utc>>,
    /// What the user was told up front of when it would be done (absent
    /// when the workflow says nothing, or `auto` has not seen enough).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectation: Option<crate::expect::Expectation>,
    pub deadline_at: Option<DateTime<Utc>>,
    pub concurrency_key: Option<String>,
    pub queued_behind: Option<OperationId>,
    /// The choice its user is asked to make (`awaiting_decision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    pub stage: usize,
    pub steps: Vec<StepRun>,
    pub ending: Option<Ending>,
    pub outcome: Option<Outcome>,
    /// Sequence number of the last timeline event; also the ETag.
    pub last_seq: u64,
    /// Input fields erased under the workflow's retention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
    /// What the user calls the fields the workflow erases, in the
    /// operation's language (`{"email": "E-Mail-Adresse"}`), where it says.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub field_labels: std::collections::BTreeMap<String, String>,
    /// Step indexes in the order they succeeded; compensation runs in reverse.
    #[serde(default)]
    pub completion_order: Vec<usize>,
    /// When the first news after the acceptance was written (a step's
    /// answer, a wait, a delay): how long a person watched in silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_news_at: Option<DateTime<Utc>>,
    /// The trace every span of the operation joins (absent on operations
    /// stored before herald kept one: their id is their trace id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::trace::TraceContext>,
    /// The language it speaks to its user in: its labels, timeline,
    /// outcome and notifications are written in it.
    #[serde(default = "default_lang")]
    pub lang: String,
}

fn default_lang() -> String {
    crate::lang::DEFAULT.to_string()
}

/// What is known of a new operation beyond its request.
#[derive(Debug, Clone, Default)]
pub struct Intake {
    /// The workflow's recent p90 flow time, for `expected_within = "auto"`.
    pub observed: Option<crate::Span>,
    /// The language chosen for its user (one the workflow offers).
    pub lang: Option<String>,
}

impl Operation {
    /// A freshly accepted operation, before any event, its texts in the
    /// language `intake` names (else the workflow's first).
    pub fn new(
        wf: &Workflow,
        id: OperationId,
        input: Value,
        subject: Option<String>,
        concurrency_key: Option<String>,
        intake: &Intake,
        now: DateTime<Utc>,
    ) -> Self {
        let observed = intake.observed;
        let default = wf.default_language();
        let lang = intake.lang.clone().unwrap_or_else(|| default.to_string());
        let text = |t: &crate::lang::Text| t.get(&lang, default).to_string();
        // An observed window never runs past the deadline: that would promise what the deadline forbids.
        let expected = wf
            .expected_within
            .and_then(|w| w.resolve(observed))
            .map(|(within, basis)| (wf.deadline.map_or(within, |d| within.min(d)), basis));
        let steps = wf
            .steps
            .iter()
            .map(|s| StepRun {
                name: s.name.clone(),
                label: text(&s.label),
                done_label: text(&s.done_label),
                stage: s.stage,
                status: StepState::Pending,
                attempts: 0,
                max_attempts: s.retry.attempts,
                next_attempt_at: None,
                started_at: None,
                finished_at: None,
                expected_by: None,
                delayed: false,
                awaiting_callback: false,
                maybe_applied: false,
                undo: s
                    .compensate
                    .as_ref()
                    .map(|c| UndoLabels { label: text(&c.label), done_label: text(&c.done_label) }),
                result: None,
                error: None,
                compensation: None,
                retry_base: 0,
                received: None,
                waiting_for: None,
            })
            .collect();
        Operation {
            id,
            workflow: wf.name.clone(),
            version: wf.version,
            label: text(&wf.label),
            subject,
            status: OpStatus::Accepted,
            delayed: false,
            needs_attention: false,
            input,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            expected_by: expected.map(|(within, _)| now + within.as_chrono()),
            expectation: expected
                .map(|(within, basis)| crate::expect::Expectation::new(within, basis, wf.deadline, &lang)),
            deadline_at: wf.deadline.map(|d| now + d.as_chrono()),
            concurrency_key,
            queued_behind: None,
            decision: None,
            stage: 0,
            steps,
            ending: None,
            outcome: None,
            last_seq: 0,
            redacted: Vec::new(),
            field_labels: wf.field_labels.iter().map(|(f, l)| (f.clone(), text(l))).collect(),
            completion_order: Vec::new(),
            first_news_at: None,
            trace: None,
            lang,
        }
    }

    pub fn step(&self, name: &str) -> Option<(usize, &StepRun)> {
        self.steps.iter().enumerate().find(|(_, s)| s.name == name)
    }

    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }

    /// Accepted and waiting behind another with its concurrency key; stores
    /// keep this beside the state, to find the line without reading states.
    pub fn is_queued(&self) -> bool {
        self.queued_behind.is_some() && self.status == OpStatus::Accepted
    }

    /// What the operation's end user is shown: labels, states, times and the
    /// outcome; of the input only the `visible` fields (none unless the
    /// workflow lists them); no step's raw result or error, which are the
    /// services' words to each other (the timeline tells the user's side);
    /// nothing that ties it to others' operations (`own_key`: its
    /// concurrency key is its subject, so those it collides with are its
    /// user's own).
    pub fn for_end_user(mut self, visible: &[String], own_key: bool) -> Operation {
        if let (Some(d), false) = (&mut self.decision, own_key) {
            d.with = None;
        }
        self.input = match self.input {
            Value::Object(fields) => Value::Object(fields.into_iter().filter(|(k, _)| visible.contains(k)).collect()),
            _ => Value::Object(Default::default()),
        };
        self.concurrency_key = None;
        self.queued_behind = None;
        // The trace is the operators' (and its `tracestate` the caller's).
        self.trace = None;
        for s in &mut self.steps {
            s.result = None;
            s.error = None;
            s.received = None;
            if let Some(c) = &mut s.compensation {
                c.error = None;
            }
        }
        self
    }

    /// A person must look: a step is held, or a compensation failed for good.
    pub fn attention_needed(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.status, StepState::Held | StepState::CompensationFailed))
    }
}
