//! Workflow files made at random from the words the format knows and
//! values of every shape, well formed or not: the parser answers each with
//! a workflow or an error naming what is wrong, and never panics.

use proptest::prelude::*;

/// A TOML value: one the field expects, or anything else.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"1s\"".to_string()),
        Just("\"-1s\"".to_string()),
        Just("\"999999999999999h\"".to_string()),
        Just("\"auto\"".to_string()),
        Just("\"\"".to_string()),
        Just("\"/p\"".to_string()),
        Just("\"hold\"".to_string()),
        Just("\"skip\"".to_string()),
        "-?[0-9]{1,22}",
        Just("1.5e308".to_string()),
        Just("true".to_string()),
        Just("[\"a\", \"a\"]".to_string()),
        Just("{ service = \"x\", path = \"/p\" }".to_string()),
        Just("{ topic = \"t\", type = \"T\", timeout = \"1s\" }".to_string()),
        Just("{ attempts = 0, initial = \"1ms\", max = \"0s\", multiplier = -2.0, jitter = 7.0 }".to_string()),
        Just("{ key = \"/x\", on_conflict = \"ask\" }".to_string()),
        "\"[ -~&&[^\"\\\\]]{0,10}\"",
    ]
}

fn field(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    (prop::sample::select(keys), value()).prop_map(|(k, v)| format!("{k} = {v}\n"))
}

const TOP: &[&str] = &[
    "name",
    "label",
    "version",
    "description",
    "expected_within",
    "deadline",
    "subject",
    "concurrency",
    "notify",
    "redact",
    "keep_input_for",
    "unknown",
];
const STEP: &[&str] = &[
    "name",
    "label",
    "done_label",
    "call",
    "publish",
    "await",
    "retry",
    "timeout",
    "on_failure",
    "deadline",
    "expected_within",
    "compensate",
    "parallel",
    "unknown",
];

fn file() -> impl Strategy<Value = String> {
    let steps = prop::collection::vec(
        (any::<bool>(), prop::collection::vec(field(STEP), 0..6)).prop_map(|(named, fields)| {
            let name = if named { "name = \"s\"\n" } else { "" };
            format!("[[steps]]\n{name}{}", fields.concat())
        }),
        0..5,
    );
    (prop::collection::vec(field(TOP), 0..5), steps)
        .prop_map(|(top, steps)| format!("{}{}", top.concat(), steps.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_generated_file_is_a_workflow_or_an_error_never_a_panic(text in file()) {
        if let Ok(wf) = super::from_toml(&text) {
            prop_assert!(!wf.steps.is_empty(), "a workflow with no step: {}", text);
            let mut names: Vec<&str> = wf.steps.iter().map(|s| s.name.as_str()).collect();
            names.sort();
            names.dedup();
            prop_assert_eq!(names.len(), wf.steps.len(), "two steps of one name: {}", text);
        }
    }
}
