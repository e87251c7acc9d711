//! The CloudEvent every test publishes, built one way.

use serde_json::{Value, json};

/// A valid CloudEvent in the JSON format: `id`, of type `kind`, from the
/// source `/tests`, with the attributes of `more` (a JSON object: `data`,
/// `partitionkey`, an extension, another `source`, …) added or put in
/// place. A test that needs a typed event parses this one.
pub fn cloud_event(id: &str, kind: &str, more: Value) -> Value {
    let mut e = json!({"specversion": "1.0", "id": id, "source": "/tests", "type": kind});
    let Value::Object(more) = more else { panic!("a CloudEvent's attributes are a JSON object, not {more}") };
    for (k, v) in more {
        e[k] = v;
    }
    e
}
