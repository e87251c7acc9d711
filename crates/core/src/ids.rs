//! Operation ids: `op_` and a UUIDv7, so ids sort by creation time and make
//! stable list cursors.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "op_01936b2e1c7a7c3f9a4b8e2d5f6a7b8c")]
pub struct OperationId(uuid::Uuid);

impl OperationId {
    /// A new id for an operation accepted at `now`; `random` fills the rest
    /// of the UUIDv7. The caller supplies both, so core reads no clock and
    /// no random source, and a test can make the same id twice.
    pub fn new(now: crate::Time, random: [u8; 10]) -> Self {
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        OperationId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }

    /// The id as a number (its UUID's 128 bits).
    pub fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// The id as text without a heap allocation: stores bind ids on their
    /// hottest paths (every transition), where `to_string` would allocate.
    pub fn text(&self) -> IdText {
        let mut buf = [0; ID_LEN];
        buf[..3].copy_from_slice(b"op_");
        self.0.simple().encode_lower(&mut buf[3..]);
        IdText(buf)
    }
}

/// `op_` and 32 hex digits.
const ID_LEN: usize = 35;

/// An id's text on the stack (see [`OperationId::text`]).
#[derive(Clone, Copy)]
pub struct IdText([u8; ID_LEN]);

impl std::ops::Deref for IdText {
    type Target = str;

    fn deref(&self) -> &str {
        // Always ASCII, as written above; no panic either way.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op_{}", self.0.simple())
    }
}

impl FromStr for OperationId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("op_").ok_or_else(|| format!("`{s}` is not an operation id"))?;
        if hex.len() != 32 {
            return Err(format!("`{s}` is not an operation id"));
        }
        uuid::Uuid::try_parse(hex).map(OperationId).map_err(|_| format!("`{s}` is not an operation id"))
    }
}

impl TryFrom<String> for OperationId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<OperationId> for String {
    fn from(id: OperationId) -> String {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = OperationId::new(chrono::Utc::now(), [7; 10]);
        assert_eq!(id.to_string().parse::<OperationId>().unwrap(), id);
    }

    #[test]
    fn ids_follow_from_time_and_randomness_alone_and_sort_by_time() {
        let t = chrono::DateTime::from_timestamp_millis(1_760_000_000_000).unwrap();
        assert_eq!(OperationId::new(t, [1; 10]), OperationId::new(t, [1; 10]), "no hidden source");
        assert_ne!(OperationId::new(t, [1; 10]), OperationId::new(t, [2; 10]));
        let later = t + chrono::Duration::milliseconds(1);
        assert!(OperationId::new(t, [255; 10]) < OperationId::new(later, [0; 10]), "a later id sorts after");
    }

    #[test]
    fn an_ids_text_made_on_the_stack_is_its_display() {
        let id = OperationId::new(chrono::Utc::now(), [9; 10]);
        assert_eq!(&*id.text(), id.to_string());
    }

    proptest::proptest! {
        /// Any text either is no id or is one that reads back as itself.
        #[test]
        fn text_is_an_id_only_if_it_reads_back(s in "(op_)?[0-9a-zA-Z_]{0,40}|[ -~]{0,40}") {
            if let Ok(id) = s.parse::<OperationId>() {
                proptest::prop_assert_eq!(id.to_string().parse::<OperationId>().unwrap(), id);
            }
        }
    }

    #[test]
    fn junk_is_not_an_id() {
        assert!("op_xyz".parse::<OperationId>().is_err());
        assert!("123".parse::<OperationId>().is_err());
    }
}
