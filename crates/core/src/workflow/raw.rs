//! The workflow file schema exactly as written (TOML file or JSON body):
//! nothing here is checked beyond its shape. [`super::parse`] turns it into
//! a [`super::Workflow`].

use serde::{Deserialize, Serialize};

use crate::{Span, lang::RawText};

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkflow {
    pub name: String,
    #[serde(default)]
    pub version: Option<u32>,
    /// The languages its texts are written in, the first the one to fall
    /// back to (default `["en"]`); `herald check` reports texts missing one.
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    /// JSON pointer into the input to the user's language (`"/locale"`),
    /// before their token's `lang` claim and `Accept-Language`.
    #[serde(default)]
    pub language_from: Option<String>,
    /// What the user is told this is about, e.g. "Your order", or per
    /// language: `{ en = "Your order", de = "Ihre Bestellung" }`.
    #[serde(default)]
    pub label: Option<RawText>,
    /// What it does, in a sentence or two (once, or per language).
    #[serde(default)]
    pub description: Option<RawText>,
    /// When it is usually done: a duration, or `"auto"` (the 90th
    /// percentile of the workflow's recent flow times).
    #[serde(default)]
    pub expected_within: Option<crate::expect::Within>,
    #[serde(default)]
    pub deadline: Option<Span>,
    /// JSON pointer into the input naming the operation's subject, e.g. `"/user_id"`.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub concurrency: Option<RawConcurrency>,
    #[serde(default)]
    pub notify: Option<RawNotify>,
    #[serde(default)]
    pub retention: Option<RawRetention>,
    /// Top-level input fields the operation's subject is shown (`["items"]`);
    /// none unless listed.
    #[serde(default)]
    pub visible_input: Vec<String>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConcurrency {
    /// `"subject"`, or a JSON pointer into the input such as `"/customer"`.
    pub key: String,
    pub on_conflict: super::OnConflict,
    /// With `ask`: how long the user has to choose (default 15m).
    #[serde(default)]
    pub decide_within: Option<Span>,
    /// With `ask`: what is chosen when that time is out, `keep` (the
    /// default) or `replace`.
    #[serde(default)]
    pub default: Option<crate::concurrency::Choice>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    #[serde(default)]
    pub on: Option<Vec<crate::notify::Trigger>>,
    #[serde(default)]
    pub channels: Option<Vec<crate::notify::Channel>>,
    /// JSON pointer into the input to the address emails go to, e.g. `"/email"`.
    #[serde(default)]
    pub email_to: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    #[serde(default)]
    pub keep_input_for: Option<Span>,
    /// Input fields erased once the operation has ended: `"email"`, or
    /// `{ field = "email", label = { en = "email address", de = "E-Mail-Adresse" } }`
    /// to tell the user what was erased in their own words, not the field's name.
    #[serde(default)]
    pub redact: Vec<RawRedact>,
}

/// A field `retention.redact` names: by its name alone, or with what the
/// user calls it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RawRedact {
    Field(String),
    Labelled(RawLabelledField),
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLabelledField {
    pub field: String,
    pub label: RawText,
}

impl RawRedact {
    pub fn field(&self) -> &str {
        match self {
            RawRedact::Field(f) => f,
            RawRedact::Labelled(l) => &l.field,
        }
    }
}

/// One `[[steps]]` entry: a step, or a `parallel` group naming steps.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub label: Option<RawText>,
    #[serde(default)]
    pub done_label: Option<RawText>,
    /// One of `call`, `publish` and `await` says what the step does.
    #[serde(default)]
    pub call: Option<RawCall>,
    #[serde(default)]
    pub publish: Option<RawPublish>,
    #[serde(default, rename = "await")]
    pub wait: Option<RawAwait>,
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// When the step fails for good: `compensate` (the default) undoes what
    /// was done; `hold` keeps the operation open and dead-letters the step
    /// for a person to redrive.
    #[serde(default)]
    pub on_failure: Option<super::OnFailure>,
    #[serde(default)]
    pub timeout: Option<Span>,
    #[serde(default)]
    pub expected_within: Option<Span>,
    #[serde(default)]
    pub deadline: Option<Span>,
    #[serde(default)]
    pub compensate: Option<RawCompensate>,
    #[serde(default)]
    pub parallel: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCall {
    pub service: String,
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
}

/// Publishes an event to a topic: `{ topic = "orders", type = "OrderPlaced" }`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPublish {
    pub topic: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The input fields the event carries (top-level names); without it,
    /// the whole input. Keep what subscribers need, not a card number.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

/// Waits for an event of `type` on `topic` that names this operation: by its
/// `operationid` extension, or by the value at `match`, a JSON pointer into
/// the event's data.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAwait {
    pub topic: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, rename = "match")]
    pub matches: Option<String>,
    /// How long to wait; none means as long as the operation lives.
    #[serde(default)]
    pub timeout: Option<Span>,
    /// `fail` (the default: the workflow compensates) or `skip` (go on without it).
    #[serde(default)]
    pub on_timeout: Option<super::OnTimeout>,
}

/// A compensation: a call (`service`, `path`) or an event (`topic`, `type`).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCompensate {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// With `topic`: the input fields the event carries.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    #[serde(default)]
    pub label: Option<RawText>,
    #[serde(default)]
    pub done_label: Option<RawText>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub initial: Option<Span>,
    #[serde(default)]
    pub max: Option<Span>,
    #[serde(default)]
    pub multiplier: Option<f64>,
    #[serde(default)]
    pub jitter: Option<f64>,
}
