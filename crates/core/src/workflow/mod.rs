//! Workflow definitions: parsed once from TOML or JSON, then trusted.
//!
//! A workflow is a list of *stages* run one after another; a stage is one
//! step or a `parallel` group of steps. A `[[steps]]` entry with `parallel =
//! ["a", "b"]` places the named steps (declared anywhere in the file) at its
//! own position, so files read top to bottom in the order things happen.

#[cfg(test)]
mod generated;
mod parse;
pub mod raw;

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{Span, lang::Text, retry::RetryPolicy};

pub use parse::{from_json, from_toml, parse};

#[derive(Debug, Clone, Serialize)]
pub struct Workflow {
    pub name: String,
    pub version: u32,
    /// The languages its texts are in; the first is the one to fall back to.
    pub languages: Vec<String>,
    /// Whether the file listed them: only then are missing texts reported.
    pub languages_declared: bool,
    /// JSON pointer into the input to the user's language.
    pub language_from: Option<String>,
    pub label: Text,
    pub description: Option<Text>,
    pub expected_within: Option<crate::expect::Within>,
    pub deadline: Option<Span>,
    pub subject: Option<String>,
    pub concurrency: Option<Concurrency>,
    /// What tells the operation's subject, and how.
    pub notify: crate::notify::NotifyPolicy,
    /// Input fields erased once the operation has ended (and its final
    /// email, if any, is out): personal data herald must not keep.
    pub redact: Vec<String>,
    /// What the user calls the fields it erases ("email address"), where
    /// the file says: the timeline tells them what was erased in these words.
    pub field_labels: BTreeMap<String, Text>,
    /// How long the whole input is kept after the operation ends.
    pub keep_input_for: Option<Span>,
    /// The input fields an end user is shown of their operation.
    pub visible_input: Vec<String>,
    pub steps: Vec<Step>,
    /// Indexes into `steps`, one inner list per stage, in run order.
    pub stages: Vec<Vec<usize>>,
    /// The definition as written, so the API can show it back.
    #[serde(skip)]
    pub source: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub label: Text,
    pub done_label: Text,
    pub action: Action,
    pub retry: RetryPolicy,
    pub on_failure: OnFailure,
    pub timeout: Span,
    pub expected_within: Option<Span>,
    pub deadline: Option<Span>,
    pub compensate: Option<Compensate>,
    pub stage: usize,
}

/// What a step (or a compensation) does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Calls a service over HTTP.
    Call(Call),
    /// Publishes an event (durable before the step is done).
    Publish(Publish),
    /// Waits for an event naming the operation.
    Await(Await),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publish {
    pub topic: String,
    /// The event's `type`.
    pub kind: String,
    /// The input fields the event carries; `None`: all of them.
    pub fields: Option<Vec<String>>,
}

impl Publish {
    /// The part of the input this event may carry.
    pub fn input(&self, input: &serde_json::Value) -> serde_json::Value {
        match (&self.fields, input.as_object()) {
            (Some(fields), Some(all)) => serde_json::Value::Object(
                all.iter().filter(|(k, _)| fields.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
            ),
            _ => input.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Await {
    pub topic: String,
    /// The event's `type`.
    pub kind: String,
    /// A JSON pointer into the event's data to the operation id; without
    /// it, the event's `operationid` extension names the operation.
    pub matches: Option<String>,
    pub timeout: Option<Span>,
    pub on_timeout: OnTimeout,
}

impl Await {
    /// The operation an event names, by this step's rule.
    pub fn correlation<'e>(&self, extension: Option<&'e str>, data: Option<&'e serde_json::Value>) -> Option<&'e str> {
        match &self.matches {
            None => extension,
            Some(p) => data.and_then(|d| d.pointer(p)).and_then(serde_json::Value::as_str),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The step fails and the workflow compensates.
    #[default]
    Fail,
    /// The step is skipped and the workflow goes on.
    Skip,
}

/// What happens when a step fails for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Undo the completed steps, in reverse order.
    #[default]
    Compensate,
    /// Keep the operation open, flag it for a person and dead-letter the
    /// step; redriving the dead letter tries the step again.
    Hold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    pub service: String,
    pub method: Method,
    /// Starts with `/`; appended to the chosen instance's base URL.
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Compensate {
    /// A call or a publish.
    pub action: Action,
    pub label: Text,
    pub done_label: Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Concurrency {
    pub key: ConcurrencyKey,
    pub on_conflict: OnConflict,
    /// With `ask`: how long the user has to choose, and what is chosen
    /// for them when that time is out.
    pub decide_within: Span,
    pub default: crate::concurrency::Choice,
}

/// How long an `ask` operation's user has to choose, unless the file says.
pub const DEFAULT_DECIDE_WITHIN: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyKey {
    Subject,
    /// A JSON pointer into the operation's input.
    Input(String),
}

/// What happens when an operation starts while another with the same
/// concurrency key is still active (DESIGN.md invariant 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Run one after the other, in the order accepted.
    Queue,
    /// Refuse the newer one with 409 and the running operation's id.
    Reject,
    /// The newest intent wins: the older one is cancelled and compensated,
    /// then the newer one runs.
    Supersede,
    /// The newer one waits for its user to choose: keep the running one,
    /// or replace it (as `supersede`) with the newer one.
    Ask,
}

/// A workflow file or body that does not hold together. Names the step and
/// the field so the author can find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WorkflowError {
    pub step: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.step, &self.field) {
            (Some(s), Some(k)) => write!(f, "step `{s}`, field `{k}`: {}", self.message),
            (Some(s), None) => write!(f, "step `{s}`: {}", self.message),
            (None, Some(k)) => write!(f, "field `{k}`: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl Workflow {
    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// Every service the workflow calls, for checking against the registry.
    pub fn services(&self) -> impl Iterator<Item = (&Step, &str)> {
        self.calls().map(|(s, c)| (s, c.service.as_str()))
    }

    /// Every call the workflow makes, of its steps and their compensations.
    pub fn calls(&self) -> impl Iterator<Item = (&Step, &Call)> {
        fn call(a: &Action) -> Option<&Call> {
            match a {
                Action::Call(c) => Some(c),
                _ => None,
            }
        }
        self.steps.iter().flat_map(|s| {
            call(&s.action)
                .map(|c| (s, c))
                .into_iter()
                .chain(s.compensate.as_ref().and_then(|c| call(&c.action)).map(|c| (s, c)))
        })
    }

    /// The language the workflow falls back to.
    pub fn default_language(&self) -> &str {
        self.languages.first().map(String::as_str).unwrap_or(crate::lang::DEFAULT)
    }

    /// Every text the workflow gives, and where it is: `label`, `steps.charge.done_label`.
    pub fn texts(&self) -> Vec<(String, &Text)> {
        let mut all = vec![("label".to_string(), &self.label)];
        all.extend(self.description.as_ref().map(|d| ("description".to_string(), d)));
        for (field, label) in &self.field_labels {
            all.push((format!("retention.redact.{field}.label"), label));
        }
        for s in &self.steps {
            all.push((format!("steps.{}.label", s.name), &s.label));
            all.push((format!("steps.{}.done_label", s.name), &s.done_label));
            if let Some(c) = &s.compensate {
                all.push((format!("steps.{}.compensate.label", s.name), &c.label));
                all.push((format!("steps.{}.compensate.done_label", s.name), &c.done_label));
            }
        }
        all
    }

    /// Texts missing from a language the workflow declares, as
    /// `(where, language)`; none when it declares no languages.
    pub fn untranslated(&self) -> Vec<(String, String)> {
        if !self.languages_declared {
            return vec![];
        }
        self.texts()
            .into_iter()
            .flat_map(|(at, text)| self.languages.iter().filter(|l| !text.has(l)).map(move |l| (at.clone(), l.clone())))
            .collect()
    }

    /// The `await` steps, with their indexes.
    pub fn awaits(&self) -> impl Iterator<Item = (usize, &Await)> {
        self.steps.iter().enumerate().filter_map(|(ix, s)| match &s.action {
            Action::Await(a) => Some((ix, a)),
            _ => None,
        })
    }
}

/// Workflow, step and service names: 1-64 letters, digits, `-` or `_`,
/// starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// Topic names: 1-128 letters, digits, `.`, `-` or `_`, starting with a
/// letter or digit.
pub fn valid_topic(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The time a step call may take when the file says nothing.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);
