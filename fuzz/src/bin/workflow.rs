//! The workflow-definition parser on any UTF-8 text. Beyond not panicking:
//! a definition that parses is kept as written (`source`, JSON, shown back
//! by the API), and that JSON must read back as the same workflow.

use herald_core::workflow::{from_json, from_toml};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let Ok(wf) = from_toml(text) else { return };
        let source = serde_json::to_vec(&wf.source).expect("a JSON value writes");
        let again = from_json(&source).expect("what parsed from TOML parses from its own JSON");
        assert_eq!(again.source, wf.source);
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&wf).unwrap());
    });
}
