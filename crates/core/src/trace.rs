//! W3C Trace Context: the `traceparent` a caller sends, read strictly,
//! and the context an operation keeps so that every span of it, written
//! by any node before or after a restart, joins one trace.

use serde::{Deserialize, Serialize};

use crate::OperationId;

/// A `traceparent` header's value: `00-<trace id>-<parent id>-<flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    /// The sender's span.
    pub parent_id: u64,
    pub flags: u8,
}

impl TraceParent {
    /// The header as the W3C recommendation reads it: lower-case hex, ids
    /// not all zero, version `ff` refused, and a later version's extra
    /// fields (after a `-`) ignored. `None` for anything else.
    pub fn parse(v: &str) -> Option<Self> {
        let v = v.trim_matches([' ', '\t']).as_bytes();
        if v.len() < 55 || (v.len() > 55 && (v[..2] == *b"00" || v[55] != b'-')) {
            return None;
        }
        if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' || v[..2] == *b"ff" {
            return None;
        }
        let (_, trace_id, parent_id, flags) = (hex(&v[..2])?, hex(&v[3..35])?, hex(&v[36..52])?, hex(&v[53..55])?);
        let parent_id = u64::try_from(parent_id).ok()?;
        let flags = u8::try_from(flags).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(TraceParent { trace_id, parent_id, flags })
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{:032x}-{:016x}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

/// Lower-case hex, at most 32 digits.
fn hex(s: &[u8]) -> Option<u128> {
    s.iter().try_fold(0u128, |n, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u128::from(d))
    })
}

/// The longest `tracestate` kept: the recommendation's 32 members of at
/// most 256 characters each, with their commas.
pub const TRACESTATE_MAX: usize = 32 * 257;

/// What an operation keeps of its trace: the ids every span of it hangs
/// from. Kept only when a caller's `traceparent` started it (else every id
/// follows from the operation's: [`TraceContext::of_id`]); shown to
/// operators, ids in hex, so that they can find its trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TraceContext {
    /// 32 hex digits; the caller's when it sent `traceparent`, else the
    /// operation id's.
    #[serde(with = "hex_id")]
    #[schema(value_type = String)]
    pub trace_id: u128,
    /// 16 hex digits: the operation's own span, parent of all its others.
    #[serde(with = "hex_id")]
    #[schema(value_type = String)]
    pub span_id: u64,
    /// The caller's span the operation was started from, when it said.
    #[serde(default, with = "hex_id::optional", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<u64>,
    /// Whether the trace is recorded (the caller's choice when it made one).
    pub sampled: bool,
    /// The caller's `tracestate`, passed on with every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl TraceContext {
    /// The context of operation `id`, started from `caller`'s span;
    /// `span_id` is the operation's span (random, not zero).
    pub fn new(caller: (TraceParent, Option<String>), span_id: u64) -> Self {
        let (caller, state) = caller;
        let state = state.map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s.len() <= TRACESTATE_MAX);
        TraceContext {
            trace_id: caller.trace_id,
            span_id: span_id.max(1),
            parent_id: Some(caller.parent_id),
            sampled: caller.sampled(),
            state,
        }
    }

    /// The context of an operation no caller's trace started: its id is
    /// the trace id, and its span's id the id's low half. Nothing to keep.
    pub fn of_id(id: &OperationId) -> Self {
        let n = id.as_u128();
        TraceContext { trace_id: n, span_id: (n as u64).max(1), parent_id: None, sampled: true, state: None }
    }

    pub fn trace(&self) -> u128 {
        self.trace_id
    }

    /// The operation's span.
    pub fn span(&self) -> u64 {
        self.span_id
    }

    /// The `traceparent` of a call made from span `span_id` of this trace.
    pub fn child(&self, span_id: u64) -> TraceParent {
        TraceParent { trace_id: self.trace_id, parent_id: span_id, flags: u8::from(self.sampled) }
    }
}

/// Ids as lower-case hex text, as W3C Trace Context and OTLP/JSON write
/// them, kept as numbers (no allocation to clone or compare).
mod hex_id {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub trait Id: Sized + Copy {
        const DIGITS: usize;
        fn to_hex(self) -> String;
        fn from_hex(s: &str) -> Option<Self>;
    }

    impl Id for u128 {
        const DIGITS: usize = 32;
        fn to_hex(self) -> String {
            format!("{self:032x}")
        }
        fn from_hex(s: &str) -> Option<Self> {
            u128::from_str_radix(s, 16).ok()
        }
    }

    impl Id for u64 {
        const DIGITS: usize = 16;
        fn to_hex(self) -> String {
            format!("{self:016x}")
        }
        fn from_hex(s: &str) -> Option<Self> {
            u64::from_str_radix(s, 16).ok()
        }
    }

    pub fn serialize<T: Id, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_hex())
    }

    pub fn deserialize<'de, T: Id, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        (s.len() == T::DIGITS)
            .then(|| T::from_hex(&s))
            .flatten()
            .ok_or_else(|| D::Error::custom(format!("`{s}` is not {} hex digits", T::DIGITS)))
    }

    pub mod optional {
        use super::*;

        pub fn serialize<T: Id, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => super::serialize(v, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, T: Id, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped<T: Id>(#[serde(with = "super")] T);
            Ok(Option::<Wrapped<T>>::deserialize(d)?.map(|Wrapped(v)| v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_what_the_recommendation_allows() {
        let p = TraceParent::parse(TP).unwrap();
        assert_eq!(p.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(p.parent_id, 0x00f067aa0ba902b7);
        assert!(p.sampled());
        assert_eq!(p.to_string(), TP);
        // A later version may add fields after a dash.
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra").is_some());
    }

    #[test]
    fn refuses_the_rest() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_operation_joins_its_callers_trace_or_starts_its_own() {
        let id: OperationId = "op_0190f3a1b2c37d4e8f9a0b1c2d3e4f50".parse().unwrap();
        let own = TraceContext::of_id(&id);
        assert_eq!((own.trace_id, own.span_id), (0x0190f3a1b2c37d4e8f9a0b1c2d3e4f50, 0x8f9a0b1c2d3e4f50));
        assert_eq!((own.parent_id, own.sampled), (None, true));
        let caller = TraceParent::parse(TP).unwrap();
        let joined = TraceContext::new((caller, Some(" k=v ".into())), 9);
        assert_eq!((joined.trace(), joined.span()), (caller.trace_id, 9));
        assert_eq!(joined.parent_id, Some(0x00f067aa0ba902b7));
        assert_eq!(joined.state.as_deref(), Some("k=v"));
        assert_eq!(joined.child(5).to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000005-01");
        let unsampled = TraceParent { flags: 0, ..caller };
        assert!(!TraceContext::new((unsampled, None), 9).sampled);
    }

    #[test]
    fn a_context_is_kept_as_hex_text_and_read_back_strictly() {
        let caller = TraceParent::parse(TP).unwrap();
        let cx = TraceContext::new((caller, None), 0x2a);
        let text = serde_json::to_value(&cx).unwrap();
        assert_eq!(
            text,
            serde_json::json!({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "000000000000002a",
                               "parent_id": "00f067aa0ba902b7", "sampled": true})
        );
        assert_eq!(serde_json::from_value::<TraceContext>(text).unwrap(), cx);
        let short = serde_json::json!({"trace_id": "4bf9", "span_id": "000000000000002a", "sampled": true});
        assert!(serde_json::from_value::<TraceContext>(short).is_err());
    }
}
