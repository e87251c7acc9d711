//! The workflow file schema exactly as written (TOML file or JSON body):
//! nothing here is checked beyond its shape. [`super::parse`] turns it into
//! a [`super::Workflow`].

use serde::{Deserialize, Serialize};

use crate::Span;

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkflow {
    pub name: String,
    #[serde(default)]
    pub version: Option<u32>,
    /// What the user is told this is about, e.g. "Your order".
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub expected_within: Option<Span>,
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
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConcurrency {
    /// `"subject"`, or a JSON pointer into the input such as `"/customer"`.
    pub key: String,
    pub on_conflict: super::OnConflict,
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
    #[serde(default)]
    pub redact: Vec<String>,
}

/// One `[[steps]]` entry: a step, or a `parallel` group naming steps.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub done_label: Option<String>,
    #[serde(default)]
    pub call: Option<RawCall>,
    #[serde(default)]
    pub retry: Option<RawRetry>,
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

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCompensate {
    pub service: String,
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub done_label: Option<String>,
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
