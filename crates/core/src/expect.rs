//! What a person is told up front about when their request will be done:
//! the workflow's `expected_within`, written as a duration or as `"auto"`
//! (the 90th percentile of the workflow's recent flow times), and the
//! words for it ("Usually takes under a minute").

use std::{fmt, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Span, lang::say};

/// A workflow's `expected_within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    Fixed(Span),
    /// From the workflow's recent flow times ([`observed`]); nothing is
    /// promised until there are enough of them.
    Auto,
}

impl Within {
    /// The window a new operation is given, and where it comes from.
    pub fn resolve(self, observed: Option<Span>) -> Option<(Span, Basis)> {
        match self {
            Within::Fixed(span) => Some((span, Basis::Configured)),
            Within::Auto => observed.map(|span| (span, Basis::Observed)),
        }
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Within::Fixed(span) => span.fmt(f),
            Within::Auto => f.write_str("auto"),
        }
    }
}

impl Serialize for Within {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Within {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "auto" {
            return Ok(Within::Auto);
        }
        s.parse().map(Within::Fixed).map_err(|e| serde::de::Error::custom(format!("{e}, or \"auto\"")))
    }
}

impl utoipa::PartialSchema for Within {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A duration, or `auto`: the 90th percentile of the workflow's recent flow times"))
            .examples(["30s", "2m", "auto"])
            .into()
    }
}

impl utoipa::ToSchema for Within {}

/// Where an operation's expected time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The workflow's `expected_within`.
    Configured,
    /// The 90th percentile of the workflow's recent flow times.
    Observed,
}

/// What an operation's user is told, when it is accepted, about when it
/// will be done: the figures for any front end, and the words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Expectation {
    /// The window the operation was given, in milliseconds; its end is the
    /// operation's `expected_by`.
    pub within_ms: u64,
    pub basis: Basis,
    /// "Usually takes under a minute".
    pub text: String,
    /// What happens if it is not done by its `deadline_at`, when the
    /// workflow has a deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_late: Option<String>,
}

impl Expectation {
    pub fn new(within: Span, basis: Basis, deadline: Option<Span>, lang: &str) -> Self {
        Expectation {
            within_ms: u64::try_from(within.0.as_millis()).unwrap_or(u64::MAX),
            basis,
            text: usually(within.0, lang),
            if_late: deadline.map(|_| say(lang, "if_late", &[])),
        }
    }
}

/// At least this many finished operations before `auto` promises anything.
pub const MIN_SAMPLES: usize = 5;

/// The 90th percentile (nearest rank) of `flow_times`, rounded up to the
/// second; `None` with fewer than [`MIN_SAMPLES`].
pub fn observed(mut flow_times: Vec<Duration>) -> Option<Span> {
    if flow_times.len() < MIN_SAMPLES {
        return None;
    }
    flow_times.sort_unstable();
    let rank = (flow_times.len() * 9).div_ceil(10);
    let p90 = flow_times[rank - 1];
    Some(Span(Duration::from_secs(p90.as_secs() + u64::from(p90.subsec_nanos() > 0)).max(Duration::from_secs(1))))
}

/// "Usually takes under a minute": the window in a person's words (in
/// `lang`), rounded up so that the promise holds.
pub fn usually(within: Duration, lang: &str) -> String {
    let secs = within.as_secs() + u64::from(within.subsec_nanos() > 0);
    let (n, one, many) = match secs {
        0..=10 => return say(lang, "usually_seconds_few", &[]),
        11..=59 => (secs, "usually_seconds", "usually_seconds"),
        60..=3599 => (secs.div_ceil(60), "usually_minute", "usually_minutes"),
        3600..=86_399 => (secs.div_ceil(3600), "usually_hour", "usually_hours"),
        _ => (secs.div_ceil(86_400), "usually_day", "usually_days"),
    };
    say(lang, if n == 1 { one } else { many }, &[("n", &n)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &[u64]) -> Vec<Duration> {
        s.iter().map(|&s| Duration::from_secs(s)).collect()
    }

    #[test]
    fn auto_promises_nothing_until_it_has_seen_enough() {
        assert_eq!(observed(secs(&[1, 2, 3, 4])), None);
        assert_eq!(Within::Auto.resolve(None), None);
        let fixed = Span(Duration::from_secs(60));
        assert_eq!(Within::Fixed(fixed).resolve(None), Some((fixed, Basis::Configured)));
    }

    #[test]
    fn the_observed_window_is_the_ninetieth_percentile_rounded_up() {
        // Ten samples: the 9th smallest. Order does not matter.
        let ten = secs(&[10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
        assert_eq!(observed(ten), Some(Span(Duration::from_secs(9))));
        let mut hundred: Vec<Duration> = (1..=100).map(|ms| Duration::from_millis(ms * 100)).collect();
        hundred.reverse();
        assert_eq!(observed(hundred), Some(Span(Duration::from_secs(9))));
        let quick = vec![Duration::from_millis(40); 5];
        assert_eq!(observed(quick), Some(Span(Duration::from_secs(1))));
        assert_eq!(Within::Auto.resolve(Some(Span(Duration::from_secs(9)))).map(|w| w.1), Some(Basis::Observed));
    }

    #[test]
    fn the_window_is_said_in_words_rounded_up() {
        let s = |n| usually(Duration::from_secs(n), "en");
        assert_eq!(s(3), "Usually takes a few seconds");
        assert_eq!(s(45), "Usually takes under 45 seconds");
        assert_eq!(s(60), "Usually takes under a minute");
        assert_eq!(s(61), "Usually takes under 2 minutes");
        assert_eq!(s(3600), "Usually takes under an hour");
        assert_eq!(s(3 * 86_400), "Usually takes under 3 days");
        assert_eq!(usually(Duration::from_secs(90), "de"), "Dauert meist weniger als 2 Minuten");
        assert_eq!(usually(Duration::from_secs(3600), "fr"), "Prend généralement moins d'une heure");
    }

    #[test]
    fn within_reads_a_duration_or_auto_and_writes_it_back() {
        let auto: Within = serde_json::from_str("\"auto\"").unwrap();
        assert_eq!(auto, Within::Auto);
        let fixed: Within = serde_json::from_str("\"2m\"").unwrap();
        assert_eq!(serde_json::to_string(&fixed).unwrap(), "\"2m\"");
        let err = serde_json::from_str::<Within>("\"soon\"").unwrap_err().to_string();
        assert!(err.contains("or \"auto\""), "{err}");
    }
}
