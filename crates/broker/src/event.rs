//! CloudEvents 1.0, the one event format herald's topics carry: read from
//! the JSON format (structured mode, one event or a batch) or from the HTTP
//! binding's binary mode (`ce-*` headers, the data as the body), checked
//! once here, and written back out in the JSON format.
//!
//! A small type of our own rather than the `cloudevents-sdk` crate, which
//! pins old versions of the HTTP and NATS clients and no longer moves.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The attributes the spec defines; anything else is an extension.
const KNOWN: [&str; 10] =
    ["specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time", "data", "data_base64"];

/// Longest `id`, `source`, `type` or `subject` accepted.
const MAX_ATTRIBUTE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CloudEvent {
    /// Always `"1.0"`.
    #[schema(pattern = "^1\\.0$")]
    pub specversion: String,
    /// With `source`, identifies the event: a re-publish is recognised by it.
    #[schema(min_length = 1, max_length = 1024)]
    pub id: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub source: String,
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 1024)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// RFC 3339, as the producer wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    /// Extension attributes: `partitionkey` orders delivery, `operationid`
    /// correlates the event with an operation.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: BTreeMap<String, Value>,
}

/// Read by hand rather than derived: `#[serde(flatten)]` buffers every
/// attribute before reading it, and each event pulled from a broker is
/// read here. The same as the derived reading: the four required
/// attributes must be there, `null` is absence for the optional ones, a
/// known attribute given twice is refused, anything else is an extension.
impl<'de> Deserialize<'de> for CloudEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

/// An attribute's name: one of the spec's, or an extension's.
enum Attribute {
    Known(usize),
    Extension(String),
}

impl<'de> Deserialize<'de> for Attribute {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Attribute;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an attribute name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Attribute, E> {
                Ok(match KNOWN.iter().position(|k| *k == name) {
                    Some(i) => Attribute::Known(i),
                    None => Attribute::Extension(name.to_string()),
                })
            }
        }
        deserializer.deserialize_identifier(Name)
    }
}

struct EventVisitor;

impl<'de> serde::de::Visitor<'de> for EventVisitor {
    type Value = CloudEvent;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a CloudEvent")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<CloudEvent, A::Error> {
        use serde::de::Error;
        let mut strings: [Option<String>; 8] = Default::default();
        let mut seen = [false; 10];
        let (mut data, mut data_base64) = (None, None);
        let mut extensions = BTreeMap::new();
        while let Some(attribute) = map.next_key::<Attribute>()? {
            match attribute {
                Attribute::Known(i) => {
                    if std::mem::replace(&mut seen[i], true) {
                        return Err(A::Error::duplicate_field(KNOWN[i]));
                    }
                    match i {
                        // The four required ones: a string, not null.
                        0..4 => strings[i] = Some(map.next_value::<String>()?),
                        4..8 => strings[i] = map.next_value::<Option<String>>()?,
                        8 => data = map.next_value::<Option<Value>>()?,
                        _ => data_base64 = map.next_value::<Option<String>>()?,
                    }
                }
                Attribute::Extension(name) => {
                    let value = map.next_value::<Value>()?;
                    extensions.insert(name, value);
                }
            }
        }
        let [specversion, id, source, kind, datacontenttype, dataschema, subject, time] = strings;
        Ok(CloudEvent {
            specversion: specversion.ok_or_else(|| A::Error::missing_field("specversion"))?,
            id: id.ok_or_else(|| A::Error::missing_field("id"))?,
            source: source.ok_or_else(|| A::Error::missing_field("source"))?,
            kind: kind.ok_or_else(|| A::Error::missing_field("type"))?,
            datacontenttype,
            dataschema,
            subject,
            time,
            data,
            data_base64,
            extensions,
        })
    }
}

/// What is wrong with an event, naming the attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    pub attribute: Option<String>,
    pub message: String,
}

fn invalid(attribute: &str, message: impl Into<String>) -> EventError {
    EventError { attribute: Some(attribute.to_string()), message: message.into() }
}

impl CloudEvent {
    /// An event in the JSON format, checked: the required attributes are
    /// there and well formed, extension names are lowercase letters and
    /// digits, and at most one of `data` and `data_base64` is given.
    pub fn from_json(value: Value) -> Result<Self, EventError> {
        let Value::Object(mut map) = value else {
            return Err(EventError { attribute: None, message: "an event must be a JSON object".into() });
        };
        // `null` means absent in the JSON format.
        map.retain(|_, v| !v.is_null());
        let specversion = required(&mut map, "specversion")?;
        let id = required(&mut map, "id")?;
        let source = required(&mut map, "source")?;
        let kind = required(&mut map, "type")?;
        let datacontenttype = optional(&mut map, "datacontenttype")?;
        let dataschema = optional(&mut map, "dataschema")?;
        let subject = optional(&mut map, "subject")?;
        let time = optional(&mut map, "time")?;
        let data = map.remove("data");
        let data_base64 = match map.remove("data_base64") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(invalid("data_base64", "`data_base64` must be a base64 string")),
        };
        let event = CloudEvent {
            specversion,
            id,
            source,
            kind,
            datacontenttype,
            dataschema,
            subject,
            time,
            data,
            data_base64,
            extensions: map.into_iter().collect(),
        };
        event.check()?;
        Ok(event)
    }

    /// An event in the HTTP binding's binary mode: attributes in `ce-*`
    /// headers (percent-encoded), the data as the body, typed by
    /// `content_type`. JSON data must parse; text stays text; anything else
    /// is carried as `data_base64`.
    pub fn from_binary<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Self, EventError> {
        let mut map = Map::new();
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            let Some(attribute) = lower.strip_prefix("ce-") else { continue };
            let text = percent_encoding::percent_decode(value)
                .decode_utf8()
                .map_err(|_| invalid(attribute, format!("the `{name}` header is not UTF-8 once percent-decoded")))?;
            if KNOWN[8..].contains(&attribute) || attribute == "datacontenttype" {
                return Err(invalid(attribute, format!("`{attribute}` is not sent as a header in binary mode")));
            }
            map.insert(attribute.to_string(), Value::String(text.into_owned()));
        }
        if let Some(ct) = content_type {
            map.insert("datacontenttype".into(), Value::String(ct.to_string()));
        }
        if !body.is_empty() {
            let (key, data) = binary_data(content_type, body)?;
            map.insert(key.into(), data);
        }
        Self::from_json(Value::Object(map))
    }

    /// An event read straight from JSON text (the derived-like reading
    /// above) as [`from_json`](Self::from_json) would have it, or `None`
    /// where that would refuse it, to be read the long way for the
    /// wording of the error. A shortcut for publishes: no tree of values
    /// built and taken apart for each event.
    pub fn checked(mut self) -> Option<Self> {
        self.extensions.retain(|_, v| !v.is_null());
        let required = [&self.specversion, &self.id, &self.source, &self.kind];
        let optional = [&self.datacontenttype, &self.dataschema, &self.subject, &self.time];
        let fits = required.iter().all(|s| fits_required(s))
            && optional.iter().all(|s| s.as_deref().is_none_or(fits_optional));
        (fits && self.check().is_ok()).then_some(self)
    }

    fn check(&self) -> Result<(), EventError> {
        if self.specversion != "1.0" {
            return Err(invalid("specversion", format!("`specversion` must be \"1.0\", not \"{}\"", self.specversion)));
        }
        if let Some(t) = &self.time {
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| invalid("time", format!("`time` must be an RFC 3339 timestamp, not \"{t}\"")))?;
        }
        if self.data.is_some() && self.data_base64.is_some() {
            return Err(invalid("data_base64", "give `data` or `data_base64`, not both"));
        }
        if let Some(b) = &self.data_base64 {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| invalid("data_base64", "`data_base64` is not valid base64"))?;
        }
        for (name, value) in &self.extensions {
            let well_named = !name.is_empty()
                && name.len() <= 20
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !well_named {
                return Err(invalid(
                    name,
                    format!(
                        "`{name}` is not a CloudEvents attribute, and extension names are 1-20 lowercase letters or digits"
                    ),
                ));
            }
            if !(value.is_string() || value.is_number() || value.is_boolean()) {
                return Err(invalid(name, format!("the extension `{name}` must be a string, number or boolean")));
            }
        }
        if let Some(k) = self.extensions.get("partitionkey")
            && !k.as_str().is_some_and(|k| !k.is_empty() && k.len() <= MAX_ATTRIBUTE)
        {
            return Err(invalid("partitionkey", "`partitionkey` must be a non-empty string"));
        }
        // The distributed-tracing extension: what consumers' spans link to.
        if let Some(v) = self.extensions.get("traceparent")
            && v.as_str().and_then(herald_core::trace::TraceParent::parse).is_none()
        {
            return Err(invalid(
                "traceparent",
                "`traceparent` must be a W3C traceparent (00-<trace id>-<span id>-<flags>)",
            ));
        }
        if let Some(v) = self.extensions.get("tracestate")
            && v.as_str().is_none_or(|s| s.len() > herald_core::trace::TRACESTATE_MAX)
        {
            return Err(invalid("tracestate", "`tracestate` must be a W3C tracestate string"));
        }
        Ok(())
    }

    /// The producer's span, from the distributed-tracing extension.
    pub fn trace_parent(&self) -> Option<herald_core::trace::TraceParent> {
        self.extension("traceparent").and_then(herald_core::trace::TraceParent::parse)
    }

    /// Sets the distributed-tracing extension, unless the producer did.
    pub fn trace_from(&mut self, parent: herald_core::trace::TraceParent, state: Option<&str>) {
        if self.extensions.contains_key("traceparent") {
            return;
        }
        self.extensions.insert("traceparent".into(), Value::String(parent.to_string()));
        if let Some(state) = state.filter(|s| !s.is_empty()) {
            self.extensions.insert("tracestate".into(), Value::String(state.into()));
        }
    }

    /// Events with the same key are delivered in publish order, one at a
    /// time per subscription: the `partitionkey` extension, else `subject`.
    pub fn ordering_key(&self) -> Option<&str> {
        self.extension("partitionkey").or(self.subject.as_deref())
    }

    /// A string extension attribute.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions.get(name).and_then(Value::as_str)
    }

    /// The event in the JSON format.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The size of the event in the JSON format, for limits: counted as
    /// written, nothing kept.
    pub fn encoded_len(&self) -> usize {
        let mut counted = Counted(0);
        match serde_json::to_writer(&mut counted, self) {
            Ok(()) => counted.0,
            Err(_) => usize::MAX,
        }
    }
}

/// A writer that only counts what it is given.
struct Counted(usize);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A required attribute's text: not blank, not too long.
fn fits_required(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= MAX_ATTRIBUTE
}

/// An optional attribute's text: not too long.
fn fits_optional(s: &str) -> bool {
    s.len() <= MAX_ATTRIBUTE
}

fn required(map: &mut Map<String, Value>, name: &str) -> Result<String, EventError> {
    match map.remove(name) {
        Some(Value::String(s)) if fits_required(&s) => Ok(s),
        Some(Value::String(_)) => Err(invalid(name, format!("`{name}` must be 1-{MAX_ATTRIBUTE} characters"))),
        Some(_) => Err(invalid(name, format!("`{name}` must be a string"))),
        None => Err(invalid(name, format!("the required attribute `{name}` is missing"))),
    }
}

fn optional(map: &mut Map<String, Value>, name: &str) -> Result<Option<String>, EventError> {
    match map.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) if fits_optional(&s) => Ok(Some(s)),
        Some(_) => Err(invalid(name, format!("`{name}` must be a string of at most {MAX_ATTRIBUTE} characters"))),
    }
}

/// The body of a binary-mode request as the event's data.
fn binary_data(content_type: Option<&str>, body: &[u8]) -> Result<(&'static str, Value), EventError> {
    let mime = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "application/json" || mime.ends_with("+json") {
        let v = serde_json::from_slice(body)
            .map_err(|e| invalid("data", format!("the body is declared JSON but does not parse: {e}")))?;
        return Ok(("data", v));
    }
    if (mime.starts_with("text/") || mime.ends_with("/xml") || mime.ends_with("+xml"))
        && let Ok(text) = std::str::from_utf8(body)
    {
        return Ok(("data", Value::String(text.to_string())));
    }
    Ok(("data_base64", Value::String(base64::engine::general_purpose::STANDARD.encode(body))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn minimal() -> Value {
        json!({"specversion": "1.0", "id": "e-1", "source": "/shop", "type": "OrderPlaced"})
    }

    #[test]
    fn an_events_encoded_length_is_that_of_its_json() {
        let mut v = minimal();
        v["data"] = json!({"note": "café ☕", "n": [1, 2, 3]});
        let e = CloudEvent::from_json(v).unwrap();
        assert_eq!(e.encoded_len(), serde_json::to_vec(&e).unwrap().len());
    }

    #[test]
    fn a_structured_event_keeps_its_extensions_and_data() {
        let mut v = minimal();
        v["partitionkey"] = json!("alice");
        v["data"] = json!({"total": 12});
        let e = CloudEvent::from_json(v.clone()).unwrap();
        assert_eq!(e.ordering_key(), Some("alice"));
        assert_eq!(e.to_json(), v, "written back as it came");
    }

    #[test]
    fn an_event_reads_back_as_it_was_written() {
        let event = CloudEvent::from_json(json!({
            "specversion": "1.0", "id": "1", "source": "/s", "type": "T", "subject": "x",
            "partitionkey": "k", "data": {"a": [1, 2]}
        }))
        .unwrap();
        let back: CloudEvent = serde_json::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
        assert_eq!(back, event);
        // null is absence; unknown attributes are extensions, null or not.
        let read: CloudEvent = serde_json::from_value(
            json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "time": null, "data": null, "ext": null}),
        )
        .unwrap();
        assert_eq!((read.time, read.data), (None, None));
        assert_eq!(read.extensions.get("ext"), Some(&Value::Null));
        let missing = serde_json::from_value::<CloudEvent>(json!({"specversion": "1.0", "id": "1", "source": "/s"}));
        assert!(missing.unwrap_err().to_string().contains("missing field `type`"));
        let twice = serde_json::from_str::<CloudEvent>(
            r#"{"specversion": "1.0", "id": "1", "id": "2", "source": "/s", "type": "T"}"#,
        );
        assert!(twice.unwrap_err().to_string().contains("duplicate field `id`"));
    }

    #[test]
    fn the_shortcut_reads_what_from_json_reads_and_refuses_nothing_else() {
        let cases = [
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T"}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "ext": null, "n": 2, "b": true}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "data": null, "time": null}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "data": {"a": [1, null]}}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "data_base64": "AA=="}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "partitionkey": "k", "subject": "x"}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=1"}"#,
            r#"{"specversion": "1.0", "id": "1", "id": "2", "source": "/s", "type": "T"}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "x": 1, "x": 2}"#,
            r#"{"specversion": "1.0", "id": " ", "source": "/s", "type": "T"}"#,
            r#"{"specversion": "1.0", "id": null, "source": "/s", "type": "T"}"#,
            r#"{"specversion": "0.3", "id": "1", "source": "/s", "type": "T"}"#,
            r#"{"specversion": 1, "id": "1", "source": "/s", "type": "T"}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "time": "yesterday"}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "subject": 3}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "Bad": "x"}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "nested": {"a": 1}}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "data": 1, "data_base64": "AA=="}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "data_base64": "not base64!"}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "partitionkey": ""}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "traceparent": "00-0-0-01"}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "traceparent": 1}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s", "type": "T", "tracestate": true}"#,
            r#"{"specversion": "1.0", "id": "1", "source": "/s"}"#,
            r#"[1]"#,
        ];
        let long = format!(r#"{{"specversion": "1.0", "id": "{}", "source": "/s", "type": "T"}}"#, "i".repeat(1025));
        for case in cases.iter().copied().chain([long.as_str()]) {
            let long_way = CloudEvent::from_json(serde_json::from_str(case).unwrap());
            let shortcut = serde_json::from_str::<CloudEvent>(case).ok().and_then(CloudEvent::checked);
            match (&long_way, &shortcut) {
                (Ok(a), Some(b)) => assert_eq!(a, b, "{case}"),
                // A known attribute twice: the long way keeps the last.
                (Ok(_), None) => assert!(case.contains(r#""id": "2""#), "refused by the shortcut only: {case}"),
                (Err(_), Some(_)) => panic!("let through by the shortcut only: {case}"),
                (Err(_), None) => {}
            }
        }
    }

    /// A value an attribute may be sent with: well formed or not.
    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
            Just(json!("1.0")),
            Just(json!("2026-12-01T10:00:00Z")),
            Just(json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")),
            Just(json!("AA==")),
            Just(json!({"a": [1, "b"]})),
            Just(json!([1, 2])),
            Just(json!("i".repeat(1025))),
        ]
    }

    proptest::proptest! {
        /// Events made of attributes herald knows, extensions good and bad,
        /// each with any kind of value: the publish shortcut and the long
        /// way read each alike, and neither panics.
        #[test]
        fn generated_events_read_the_same_both_ways(
            attrs in proptest::collection::btree_map(
                proptest::sample::select(vec![
                    "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
                    "data", "data_base64", "partitionkey", "traceparent", "tracestate", "operationid", "Bad", "x-y", "",
                ]),
                value(),
                0..10,
            ),
            complete in proptest::bool::weighted(0.7),
        ) {
            let mut v = if complete { minimal() } else { json!({}) };
            for (k, val) in attrs {
                v[k] = val;
            }
            let text = v.to_string();
            let long_way = CloudEvent::from_json(v);
            let shortcut = serde_json::from_str::<CloudEvent>(&text).ok().and_then(CloudEvent::checked);
            match (&long_way, &shortcut) {
                (Ok(a), Some(b)) => proptest::prop_assert_eq!(a, b),
                (Err(_), Some(_)) => proptest::prop_assert!(false, "let through by the shortcut only: {}", text),
                _ => {}
            }
        }
    }

    #[test]
    fn each_missing_or_malformed_attribute_is_named() {
        for (attr, mutate) in [
            ("id", json!({"id": null})),
            ("source", json!({"source": ""})),
            ("type", json!({"type": 3})),
            ("specversion", json!({"specversion": "0.3"})),
            ("time", json!({"time": "yesterday"})),
            ("traceparent", json!({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"})),
            ("Bad-Name", json!({"Bad-Name": "x"})),
            ("nested", json!({"nested": {"a": 1}})),
            ("data_base64", json!({"data": 1, "data_base64": "AA=="})),
        ] {
            let mut v = minimal();
            for (k, val) in mutate.as_object().unwrap() {
                v[k] = val.clone();
            }
            let err = CloudEvent::from_json(v).unwrap_err();
            assert_eq!(err.attribute.as_deref(), Some(attr), "{err}");
        }
    }

    #[test]
    fn binary_mode_reads_headers_and_types_the_body() {
        let headers = [
            ("ce-specversion", &b"1.0"[..]),
            ("CE-ID", b"e-2"),
            ("ce-source", b"/shop"),
            ("ce-type", b"OrderPlaced"),
            ("ce-subject", b"caf%C3%A9"),
            ("content-length", b"12"),
        ];
        let e = CloudEvent::from_binary(headers, Some("application/json"), br#"{"total": 1}"#).unwrap();
        assert_eq!(e.id, "e-2");
        assert_eq!(e.subject.as_deref(), Some("café"));
        assert_eq!(e.data, Some(json!({"total": 1})));
        let e = CloudEvent::from_binary(headers, Some("application/octet-stream"), &[0, 159, 146]).unwrap();
        assert_eq!(e.data_base64.as_deref(), Some("AJ+S"));
        let err = CloudEvent::from_binary(headers, Some("application/json"), b"{oops").unwrap_err();
        assert_eq!(err.attribute.as_deref(), Some("data"));
    }
}
