//! How deeply a JSON document nests. herald stores what it accepts inside
//! its own documents (an operation holds its input, its steps' results),
//! and serde_json reads at most 128 levels: a value nested deeper than
//! [`MAX_DEPTH`] could be stored but never read back, so it is refused at
//! the edge. A byte scan, not a parse, so the refusal costs next to nothing.

/// The deepest nesting herald takes in, well inside what it can read back.
pub const MAX_DEPTH: usize = 64;

/// How many arrays and objects deep `json` goes at its deepest (strings
/// skipped, escapes included); broken JSON is scanned as far as it goes.
pub fn depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Why `json` is refused, if it nests deeper than [`MAX_DEPTH`].
pub fn check(json: &[u8]) -> Result<(), String> {
    match depth(json) {
        d if d > MAX_DEPTH => Err(format!("the JSON nests {d} levels deep; herald takes at most {MAX_DEPTH}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert_eq!(depth(br#"{"a": "[[[{{{", "b": ["\"]]]", {"c": 1}]}"#), 3);
        assert_eq!(depth(b"42"), 0);
        assert!(check(&[b'['; 65]).is_err());
        assert!(check(&[b'['; 64]).is_ok());
    }

    proptest! {
        #[test]
        fn the_scan_agrees_with_the_parser(levels in 0usize..120, key in "[a-z\\[\\]{}\"\\\\]{0,6}") {
            let mut v = serde_json::json!(key.clone());
            for i in 0..levels {
                v = if i % 2 == 0 { serde_json::json!([v]) } else { serde_json::json!({ key.clone(): v }) };
            }
            let text = serde_json::to_vec(&v).unwrap();
            prop_assert_eq!(depth(&text), levels);
        }
    }
}
