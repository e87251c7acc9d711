//! What the API answers with, beyond the core types themselves.

use herald_core::{Event, Operation};
use serde::{Deserialize, Serialize};

/// An operation with its whole timeline.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OperationView {
    #[serde(flatten)]
    pub operation: Operation,
    pub timeline: Vec<Event>,
}

/// The answer to a start with `Prefer: return=minimal`: what a caller
/// needs to follow the operation, without its whole representation.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OperationRef {
    pub id: herald_core::OperationId,
    pub workflow: String,
    pub status: herald_core::OpStatus,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OperationList {
    /// Newest first, without their timelines.
    pub items: Vec<Operation>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why, in words for the user ("changed my mind").
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// The choice for an operation awaiting one.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub choice: herald_core::concurrency::Choice,
}

/// A step's result, sent by a service that first answered 202.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The step's result on success.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// Set instead of `result` when the work failed.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub error: Option<String>,
    /// With `error`: may the step be tried again?
    #[serde(default)]
    pub retryable: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowSummary {
    pub name: String,
    pub version: u32,
    /// In the reader's language (`Accept-Language`, an end user's `lang` claim).
    pub label: String,
    /// The languages its texts are in, the first the one it falls back to.
    pub languages: Vec<String>,
    pub description: Option<String>,
    /// The definition as written.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
}
