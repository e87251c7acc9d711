//! The languages herald speaks to people in: its own phrases, from one
//! catalog a translator edits (`phrases.toml`), and a workflow's texts
//! (labels, done labels), written once or per language
//! (`label = { en = "…", de = "…" }`). An operation speaks one language,
//! chosen when it is accepted, so everything it writes down (timeline,
//! outcome, notifications, emails) is in its user's language.

use std::{collections::BTreeMap, fmt, sync::LazyLock};

use serde::{Deserialize, Serialize};

/// The language herald falls back to, and the one its phrases are written in first.
pub const DEFAULT: &str = "en";

/// The languages herald's own phrases are written in.
pub const HERALD_SPEAKS: [&str; 3] = ["en", "de", "fr"];

type Catalog = BTreeMap<String, BTreeMap<String, String>>;

static PHRASES: LazyLock<Catalog> =
    LazyLock::new(|| toml::from_str(include_str!("phrases.toml")).expect("phrases.toml is checked by its tests"));

/// Phrase `id` in `lang` (in English where it has no such line), its
/// `{placeholders}` filled from `args`.
pub fn say(lang: &str, id: &str, args: &[(&str, &dyn fmt::Display)]) -> String {
    let Some(entry) = PHRASES.get(id) else { return id.to_string() };
    let text = entry.get(primary(lang)).or_else(|| entry.get(DEFAULT)).map(String::as_str).unwrap_or(id);
    let mut out = text.to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

/// `de-AT` → `de`: herald's phrases are kept per language, not per region.
fn primary(lang: &str) -> &str {
    lang.split(['-', '_']).next().unwrap_or(lang)
}

/// Whether `tag` reads as a language tag (`en`, `de`, `pt-BR`, `zh-Hant`).
pub fn valid_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first = parts.next().unwrap_or_default();
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The language to speak to someone who prefers `wanted` (best first), of
/// those `offered`: the first wanted one offered, by full tag then by its
/// primary language; else the first offered.
pub fn choose<'a>(wanted: &[String], offered: &'a [String]) -> &'a str {
    let fallback = offered.first().map(String::as_str).unwrap_or(DEFAULT);
    wanted
        .iter()
        .find_map(|w| {
            offered
                .iter()
                .find(|o| o.eq_ignore_ascii_case(w))
                .or_else(|| offered.iter().find(|o| primary(o).eq_ignore_ascii_case(primary(w))))
        })
        .map_or(fallback, String::as_str)
}

/// A workflow's text, per language; a text written once is in the
/// workflow's first language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(BTreeMap<String, String>);

impl Text {
    pub fn one(lang: &str, text: impl Into<String>) -> Self {
        Text(BTreeMap::from([(lang.to_string(), text.into())]))
    }

    pub fn from_raw(raw: RawText, default: &str) -> Self {
        match raw {
            RawText::Once(text) => Text::one(default, text),
            RawText::PerLanguage(map) => Text(map),
        }
    }

    /// The text in `lang`, else in `default`, else in any language it has.
    pub fn get(&self, lang: &str, default: &str) -> &str {
        self.0
            .get(lang)
            .or_else(|| self.0.get(default))
            .or_else(|| self.0.values().next())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The same text made per language by `f` (a default derived from it).
    pub fn map(&self, f: impl Fn(&str, &str) -> String) -> Text {
        Text(self.0.iter().map(|(lang, text)| (lang.clone(), f(lang, text))).collect())
    }

    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }

    pub fn has(&self, lang: &str) -> bool {
        self.0.contains_key(lang)
    }
}

/// A text as written in a workflow file: once, or per language.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RawText {
    Once(String),
    PerLanguage(BTreeMap<String, String>),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn placeholders(text: &str) -> BTreeSet<&str> {
        text.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(name, _)| name)).collect()
    }

    #[test]
    fn every_phrase_is_in_every_language_herald_speaks_with_the_same_placeholders() {
        assert!(!PHRASES.is_empty());
        for (id, entry) in PHRASES.iter() {
            let english = placeholders(&entry[DEFAULT]);
            for lang in HERALD_SPEAKS {
                let text = entry.get(lang).unwrap_or_else(|| panic!("`{id}` has no `{lang}` line"));
                assert!(!text.trim().is_empty(), "`{id}`.{lang} is empty");
                assert_eq!(placeholders(text), english, "`{id}`.{lang} names other placeholders");
            }
            assert_eq!(entry.len(), HERALD_SPEAKS.len(), "`{id}` has a language herald does not list");
        }
    }

    #[test]
    fn a_phrase_is_said_in_the_language_asked_with_its_blanks_filled() {
        assert_eq!(
            say("de", "step_attempt", &[("label", &"Karte belasten"), ("attempt", &2)]),
            "Karte belasten (Versuch 2)"
        );
        assert_eq!(say("fr-CA", "delayed", &[]), "Cela prend plus de temps que d'habitude");
        assert_eq!(say("sv", "delayed", &[]), "This is taking longer than usual", "English where herald has none");
    }

    #[test]
    fn the_language_is_the_first_wanted_that_is_offered() {
        let offered = vec!["en".to_string(), "de".to_string(), "pt-BR".to_string()];
        let w = |tags: &[&str]| tags.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(choose(&w(&["de-AT", "en"]), &offered), "de");
        assert_eq!(choose(&w(&["fr", "pt-br"]), &offered), "pt-BR");
        assert_eq!(choose(&w(&["fr"]), &offered), "en", "the workflow's first");
        assert!(valid_tag("pt-BR") && valid_tag("de") && !valid_tag("German") && !valid_tag("d"));
    }

    #[test]
    fn a_text_falls_back_to_the_workflows_first_language() {
        let t = Text::from_raw(
            RawText::PerLanguage([("en".into(), "Hi".into()), ("de".into(), "Hallo".into())].into()),
            "en",
        );
        assert_eq!((t.get("de", "en"), t.get("fr", "en")), ("Hallo", "Hi"));
        assert_eq!(Text::from_raw(RawText::Once("Hi".into()), "de").get("de", "de"), "Hi");
    }
}
