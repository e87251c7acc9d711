//! Notifications: the one message per operation a person finds in their
//! inbox (and by webhook or email), rewritten in place as the operation
//! moves. Which timeline events notify, and on which channels, is the
//! workflow's `[notify]`; the words come from the step labels and the
//! outcome, never from internal names.

use serde::{Deserialize, Serialize};

use crate::{
    OpStatus,
    lang::say,
    operation::Operation,
    timeline::{Event, EventKind, clause},
};

/// Timeline moments that may notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Accepted,
    /// Its user is asked to choose (`on_conflict = "ask"`), and told the choice.
    Decision,
    StepDone,
    Delayed,
    Succeeded,
    Failed,
    Cancelled,
    NeedsAttention,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Inbox,
    Webhook,
    Email,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifyPolicy {
    pub on: Vec<Trigger>,
    pub channels: Vec<Channel>,
    /// JSON pointer into the input: the address for the email channel.
    pub email_to: Option<String>,
}

impl NotifyPolicy {
    /// Without `[notify]`: the inbox hears of the start, of lateness and of
    /// the end, which is what a person waiting needs.
    pub fn from_raw(raw: Option<&crate::workflow::raw::RawNotify>) -> Self {
        use Trigger::*;
        let on = raw
            .and_then(|r| r.on.clone())
            .unwrap_or_else(|| vec![Accepted, Decision, Delayed, Succeeded, Failed, Cancelled, NeedsAttention]);
        let channels = raw.and_then(|r| r.channels.clone()).unwrap_or_else(|| vec![Channel::Inbox]);
        NotifyPolicy { on, channels, email_to: raw.and_then(|r| r.email_to.clone()) }
    }

    /// Will the operation's final notification go out by email?
    pub fn emails_the_end(&self) -> bool {
        self.channels.contains(&Channel::Email)
            && [Trigger::Succeeded, Trigger::Failed, Trigger::Cancelled].iter().any(|t| self.on.contains(t))
    }
}

/// How a notification should look: its colour and icon in a UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Progress,
    Warning,
    Success,
    Error,
}

/// The content of an operation's notification at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notice {
    pub title: String,
    pub body: String,
    pub level: Level,
    pub status: OpStatus,
    /// What made it change.
    pub trigger: Trigger,
    /// The person must do something (or knows someone will).
    pub needs_attention: bool,
    /// Where it goes; decided by the workflow, not shown.
    #[serde(skip)]
    pub channels: Vec<Channel>,
}

fn trigger_of(kind: &EventKind) -> Option<Trigger> {
    Some(match kind {
        EventKind::Accepted => Trigger::Accepted,
        EventKind::DecisionNeeded { .. } | EventKind::Decided { .. } => Trigger::Decision,
        EventKind::StepSucceeded { .. } => Trigger::StepDone,
        EventKind::Delayed | EventKind::StepDelayed { .. } | EventKind::DeadlinePassed { .. } => Trigger::Delayed,
        EventKind::Succeeded => Trigger::Succeeded,
        EventKind::Failed { .. } => Trigger::Failed,
        EventKind::Cancelled { .. } => Trigger::Cancelled,
        EventKind::NeedsAttention { .. } | EventKind::StepHeld { .. } | EventKind::StepRedriven { .. } => {
            Trigger::NeedsAttention
        }
        _ => return None,
    })
}

/// The notification these new events call for, if the policy asks for one:
/// the last triggering event decides what it says.
pub fn derive(op: &Operation, policy: &NotifyPolicy, events: &[Event]) -> Option<Notice> {
    if op.subject.is_none() || policy.channels.is_empty() {
        return None;
    }
    let (event, trigger) =
        events.iter().rev().find_map(|e| trigger_of(&e.kind).filter(|t| policy.on.contains(t)).map(|t| (e, t)))?;
    let say = |id: &str| say(&op.lang, id, &[]);
    let (body, level) = match trigger {
        Trigger::Accepted => {
            let mut body = say("notice_accepted");
            if let Some(e) = &op.expectation {
                body = format!("{body} {}.", e.text);
            }
            (body, Level::Progress)
        }
        Trigger::StepDone => (format!("{}.", event.message), Level::Progress),
        Trigger::Decision if op.status == OpStatus::AwaitingDecision => {
            let default = match op.decision.as_ref().map(|d| d.default) {
                Some(crate::concurrency::Choice::Replace) => say("notice_decide_replace"),
                _ => say("notice_decide_keep"),
            };
            (format!("{}. {default}", event.message), Level::Warning)
        }
        Trigger::Decision => (format!("{}.", event.message), Level::Progress),
        Trigger::Delayed if matches!(event.kind, EventKind::DeadlinePassed { .. }) => {
            (format!("{}.", event.message), Level::Warning)
        }
        Trigger::Delayed => (say("notice_delayed"), Level::Warning),
        Trigger::Succeeded => (final_text(op), Level::Success),
        Trigger::Failed | Trigger::Cancelled | Trigger::NeedsAttention if op.is_final() => (
            final_text(op),
            if op.needs_attention {
                Level::Error
            } else if trigger == Trigger::Cancelled {
                Level::Info
            } else {
                Level::Error
            },
        ),
        Trigger::NeedsAttention if matches!(event.kind, EventKind::StepHeld { .. }) => {
            (format!("{}. {}", clause(&event.message), say("notice_held")), Level::Warning)
        }
        Trigger::NeedsAttention if matches!(event.kind, EventKind::StepRedriven { .. }) => {
            (format!("{}. {}", clause(&event.message), say("notice_will_tell")), Level::Progress)
        }
        Trigger::Failed | Trigger::Cancelled | Trigger::NeedsAttention => (say("notice_not_undone"), Level::Error),
    };
    Some(Notice {
        title: op.label.clone(),
        body,
        level,
        status: op.status,
        trigger,
        needs_attention: op.needs_attention,
        channels: policy.channels.clone(),
    })
}

/// The outcome in words, and what happens next when a person must act.
fn final_text(op: &Operation) -> String {
    let mut text = op.outcome.as_ref().map(|o| o.summary.clone()).unwrap_or_default();
    if op.needs_attention {
        text.push_str(&say(&op.lang, "notice_will_contact", &[]));
    } else if op.status == OpStatus::Failed {
        text.push_str(&say(&op.lang, "notice_try_again", &[]));
    }
    text
}

/// An operation's notification as stored in its subject's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    pub operation_id: crate::OperationId,
    #[serde(flatten)]
    pub notice: Notice,
    pub read: bool,
    /// The subject's change counter at this notification's last change:
    /// the inbox stream's event id.
    pub version: u64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Notification {
    /// One notification per operation: its id follows from the operation's.
    pub fn id_for(op: &crate::OperationId) -> String {
        format!("nt_{}", &op.to_string()[3..])
    }
}

/// A notification as it changed, with the subject's unread count after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxChange {
    pub notification: Notification,
    pub unread: u64,
}

/// What the email channel sends, and to whom; `None` when the input has
/// no address at the workflow's `email_to`.
pub fn email(op: &Operation, policy: &NotifyPolicy, notice: &Notice) -> Option<serde_json::Value> {
    let to = op.input.pointer(policy.email_to.as_deref()?)?.as_str()?.to_string();
    let subject = match op.status {
        OpStatus::Succeeded => "email_done",
        OpStatus::Failed => "email_failed",
        OpStatus::Cancelled => "email_cancelled",
        _ => "email_update",
    };
    Some(serde_json::json!({
        "to": to,
        "subject": say(&op.lang, subject, &[("label", &notice.title)]),
        "lang": op.lang,
        "body": notice.body,
        "final": op.is_final(),
    }))
}

/// What a webhook receives: the notification with the operation's outcome.
pub fn webhook_payload(op: &Operation, notice: &Notice, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::json!({
        "type": "herald.notification",
        "id": Notification::id_for(&op.id),
        "operation_id": op.id,
        "workflow": op.workflow,
        "subject": op.subject,
        "at": at,
        "notification": notice,
        "outcome": op.outcome,
    })
}
