//! Reading an operation as `GET /v1/operations/{id}` shows it.

use serde_json::Value;

/// The types of the operation's timeline events, in order.
pub fn event_types(op: &Value) -> Vec<String> {
    op["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
}

/// The operation's step called `name` (failing the test if it has none).
pub fn step<'a>(op: &'a Value, name: &str) -> &'a Value {
    op["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no step {name}"))
}
