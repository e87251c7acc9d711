//! Durations as people write them in workflow files: `"200ms"`, `"2m"`, `"24h"`, `"7d"`.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed, non-negative duration. Serialises back to the human form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

impl Span {
    pub const fn from_millis(ms: u64) -> Self {
        Span(Duration::from_millis(ms))
    }

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(Span)
            .map_err(|e| format!("`{s}` is not a duration like \"200ms\", \"30s\", \"2m\" or \"24h\" ({e})"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Span {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .examples(["200ms", "30s", "24h"])
            .into()
    }
}

impl utoipa::ToSchema for Span {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_workflow_files_use() {
        assert_eq!("200ms".parse::<Span>().unwrap(), Span::from_millis(200));
        assert_eq!("2m".parse::<Span>().unwrap(), Span::from_millis(120_000));
        assert_eq!("7d".parse::<Span>().unwrap(), Span::from_millis(7 * 86_400_000));
    }

    #[test]
    fn rejects_a_bare_number_with_a_helpful_message() {
        let err = "30".parse::<Span>().unwrap_err();
        assert!(err.contains("not a duration"), "{err}");
    }
}
