//! Reading `herald.toml` and `HERALD_…` variables into a [`Config`].
//!
//! The file may hold tokens and secrets, and error messages end up in
//! logs: an error says where (the file's line and column, or the variable)
//! and what is wrong, never the text there. No snippet of the line is
//! shown, and any value of the configuration that a message would echo
//! (`invalid type: string "…"`) is replaced by `…`.
//!
//! The file is parsed keeping each value's place; the variables are laid
//! over it at places past the file's end, one per variable, so an error's
//! place tells which of them it is about.

use std::{borrow::Cow, ops::Range, path::Path};

use serde::Deserialize;
use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use super::{Config, ConfigError};

/// One `HERALD_…` variable: its name, its keys, and `v = <value>`, the
/// text its value is read from.
struct Var {
    name: String,
    keys: Vec<String>,
    raw: String,
    source: String,
}

pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    let (text, origin) = match file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            (text, path.display().to_string())
        }
        None => (String::new(), "configuration".to_string()),
    };
    let vars = vars(env);
    let place = |span: Option<Range<usize>>| where_(&origin, &text, &vars, span);
    let parsed = DeTable::parse(&text)
        .map_err(|e| ConfigError::Invalid { origin: place(e.span()), message: e.message().trim().to_string() })?;
    let root_span = parsed.span();
    let mut root = parsed.into_inner();
    for (i, var) in vars.iter().enumerate() {
        let span = past_the_file(&text, i);
        overlay(&mut root, &var.keys, value(var, span.clone()), span);
    }
    let root = Spanned::new(root_span, root);
    let values = Values(&root);
    Config::deserialize(toml::de::Deserializer::from(root.clone())).map_err(|mut e| {
        e.set_input(None); // no snippet; the key path, if any, stays
        let message = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        ConfigError::Invalid { origin: place(e.span()), message: redact(&message, &values.within(e.span())) }
    })
}

fn vars(env: impl IntoIterator<Item = (String, String)>) -> Vec<Var> {
    let mut vars = Vec::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("HERALD_") else { continue };
        // The config file's own path, the log format, and switches of
        // herald's tests, are not settings.
        if rest == "CONFIG" || rest == "LOG_FORMAT" || rest.starts_with("TEST_") {
            continue;
        }
        let keys = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
        let source = format!("v = {raw}");
        vars.push(Var { name, keys, raw, source });
    }
    vars
}

/// Where variable `i`'s values are placed: past the file's end.
fn past_the_file(text: &str, i: usize) -> Range<usize> {
    let at = text.len() + 1 + i;
    at..at + 1
}

/// A variable's value, read as TOML when it parses (`1024`, `["a"]`), else as text.
fn value(var: &Var, span: Range<usize>) -> Spanned<DeValue<'_>> {
    let parsed = DeTable::parse(&var.source).ok().and_then(|t| t.into_inner().remove("v"));
    let value = parsed.map_or(DeValue::String(Cow::Borrowed(var.raw.as_str())), Spanned::into_inner);
    respan(value, span)
}

/// `value` with every place in it set to `span`.
fn respan(value: DeValue<'_>, span: Range<usize>) -> Spanned<DeValue<'_>> {
    let value = match value {
        DeValue::Array(items) => {
            DeValue::Array(items.into_iter().map(|v| respan(v.into_inner(), span.clone())).collect())
        }
        DeValue::Table(table) => DeValue::Table(
            table
                .into_iter()
                .map(|(k, v)| (Spanned::new(span.clone(), k.into_inner()), respan(v.into_inner(), span.clone())))
                .collect(),
        ),
        scalar => scalar,
    };
    Spanned::new(span, value)
}

fn overlay<'a>(table: &mut DeTable<'a>, keys: &[String], value: Spanned<DeValue<'a>>, span: Range<usize>) {
    let key = |k: &String| Spanned::new(span.clone(), Cow::Owned(k.clone()));
    match keys {
        [] => {}
        [last] => {
            table.insert(key(last), value);
        }
        [first, rest @ ..] => {
            let empty = || Spanned::new(span.clone(), DeValue::Table(DeTable::new()));
            let entry = table.entry(key(first)).or_insert_with(empty);
            if !entry.get_ref().is_table() {
                *entry = empty();
            }
            if let DeValue::Table(t) = entry.get_mut() {
                overlay(t, rest, value, span);
            }
        }
    }
}

/// Where an error is: the file's line and column, or the variable.
fn where_(origin: &str, text: &str, vars: &[Var], span: Option<Range<usize>>) -> String {
    let Some(span) = span else { return origin.to_string() };
    if span.start > text.len() {
        let var = vars.get(span.start - text.len() - 1);
        return var.map_or_else(|| origin.to_string(), |v| v.name.clone());
    }
    let mut at = span.start.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    format!("{origin}, line {line}, column {column}")
}

/// The configuration's values, by place.
struct Values<'r, 'a>(&'r Spanned<DeTable<'a>>);

impl Values<'_, '_> {
    /// The text of every value placed within `span` (all of them without one).
    fn within(&self, span: Option<Range<usize>>) -> Vec<String> {
        let mut found = Vec::new();
        let inside = |s: &Range<usize>| span.as_ref().is_none_or(|e| e.start <= s.start && s.end <= e.end);
        let mut stack: Vec<&Spanned<DeValue>> = self.0.get_ref().values().collect();
        while let Some(v) = stack.pop() {
            match v.get_ref() {
                DeValue::Table(t) => stack.extend(t.values()),
                DeValue::Array(a) => stack.extend(a.iter()),
                _ if !inside(&v.span()) => {}
                DeValue::String(s) => found.push(s.to_string()),
                DeValue::Integer(i) => found.push(i.as_str().to_string()),
                DeValue::Float(f) => found.push(f.as_str().to_string()),
                DeValue::Datetime(d) => found.push(d.to_string()),
                DeValue::Boolean(_) => {}
            }
        }
        found
    }
}

/// The shortest value replaced wherever it appears; shorter ones only
/// where quoted, so that `…` does not land in the middle of words.
const BARE_VALUE_CHARS: usize = 4;

/// `message` without the values that it might echo: each whole, and any
/// quoted piece of one (a parser that names the part it could not read).
fn redact(message: &str, values: &[String]) -> String {
    let mut values: Vec<&String> = values.iter().filter(|v| !v.is_empty()).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = message.to_string();
    for v in &values {
        out = out.replace(&format!("{v:?}"), "…");
        if v.chars().count() >= BARE_VALUE_CHARS {
            out = out.replace(v.as_str(), "…");
        }
    }
    let mut redacted = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..open + 1];
        redacted.push_str(&rest[..open]);
        let Some(len) = rest[open + 1..].find(quote) else {
            redacted.push_str(quote); // unmatched: an ordinary character
            rest = &rest[open + 1..];
            continue;
        };
        let inner = &rest[open + 1..open + 1 + len];
        if !inner.is_empty() && values.iter().any(|v| v.contains(inner)) {
            redacted.push('…');
        } else {
            redacted.push_str(&rest[open..open + len + 2]);
        }
        rest = &rest[open + len + 2..];
    }
    redacted.push_str(rest);
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error of loading `text` as the file, with `env`.
    fn error(text: &str, env: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.toml");
        std::fs::write(&path, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let err = load(Some(&path), env).expect_err("refused").to_string();
        err.replace(&path.display().to_string(), "herald.toml")
    }

    #[test]
    fn a_syntax_error_names_its_line_but_not_the_secret_on_it() {
        let text = "listen = \"127.0.0.1:7070\"\n[webhook]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"s3cr3t-webhook-0123456789\n";
        let err = error(text, &[]);
        assert!(err.starts_with("herald.toml, line 4, column "), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_line_and_not_echoed() {
        let cases = [
            (
                "[[auth.tokens]]\nname = \"ops\"\ntoken = 918273645546372819\nrole = \"admin\"\n",
                "918273645546372819",
                3,
            ),
            ("[[auth.tokens]]\nname = \"ops\"\ntoken = \"t\"\nrole = \"sup3rs3cret-role\"\n", "sup3rs3cret", 4),
            ("[engine]\nlease = \"hunter2hunter2\"\n", "hunter2", 2),
            ("[email]\nhost = \"smtp\"\nfrom = \"a@b.c\"\npassword = [\"pa55word-in-a-list\"]\n", "pa55word", 4),
        ];
        for (text, secret, line) in cases {
            let err = error(text, &[]);
            assert!(err.starts_with(&format!("herald.toml, line {line}, column ")), "{err}");
            assert!(!err.contains(secret), "{err}");
        }
    }

    #[test]
    fn a_bad_variable_is_named_and_its_value_not_echoed() {
        let err = error("[engine]\nlease = \"2m\"\n", &[("HERALD_ENGINE__LEASE", "t0p-s3cret-value")]);
        assert!(err.starts_with("HERALD_ENGINE__LEASE: "), "{err}");
        assert!(!err.contains("t0p-s3cret"), "{err}");
        let err = error("", &[("HERALD_AUTH__TOKENS", "[{ name = \"a\", token = 5551234987, role = \"admin\" }]")]);
        assert!(err.starts_with("HERALD_AUTH__TOKENS: "), "{err}");
        assert!(!err.contains("5551234987"), "{err}");
    }

    #[test]
    fn values_are_redacted_whole_quoted_or_in_quoted_pieces() {
        let values = ["hunter2-is-long".to_string(), "ab".to_string(), "5xyz".to_string()];
        let cases = [
            ("invalid type: string \"hunter2-is-long\", expected u16", "invalid type: string …, expected u16"),
            ("unknown variant `ab`, expected `service` or `admin`", "unknown variant …, expected `service` or `admin`"),
            ("`5xyz` is not a duration (unknown time unit \"xyz\")", "`…` is not a duration (unknown time unit …)"),
            ("missing field `role`", "missing field `role`"),
            ("an \"unmatched quote and `ab`", "an \"unmatched quote and …"),
        ];
        for (message, redacted) in cases {
            assert_eq!(redact(message, &values), redacted);
        }
    }
}
