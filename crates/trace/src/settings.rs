//! Whether and where spans go, from the OpenTelemetry SDK's standard
//! variables. herald reads the ones that decide (on or off, the protocol,
//! the endpoint); the exporter reads the rest itself (headers, timeout,
//! compression), and the SDK the sampler (`OTEL_TRACES_SAMPLER`), batching
//! (`OTEL_BSP_*`) and resource (`OTEL_RESOURCE_ATTRIBUTES`).

use anyhow::bail;
use opentelemetry_otlp::Protocol;

#[derive(Debug, Clone)]
pub struct Settings {
    pub enabled: bool,
    pub protocol: Protocol,
    /// The traces endpoint (a whole URL); `None`: the exporter's default.
    pub endpoint: Option<String>,
    pub service_name: String,
    /// How long spans wait to go out in a batch; `None`: `OTEL_BSP_SCHEDULE_DELAY`
    /// or the SDK's 5 s.
    pub batch_delay: Option<std::time::Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            protocol: Protocol::HttpBinary,
            endpoint: None,
            service_name: "herald".into(),
            batch_delay: None,
        }
    }
}

impl Settings {
    /// Off unless `OTEL_TRACES_EXPORTER=otlp` or an OTLP endpoint is set;
    /// `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` win.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let endpoint = match (get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(traces), _) => Some(traces),
            (None, Some(base)) => Some(format!("{}/v1/traces", base.trim_end_matches('/'))),
            (None, None) => None,
        };
        let asked = match get("OTEL_TRACES_EXPORTER").as_deref() {
            None => endpoint.is_some(),
            Some("none") => false,
            Some("otlp") => true,
            Some(other) => bail!("OTEL_TRACES_EXPORTER={other}: herald exports traces over otlp only (or none)"),
        };
        let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let protocol =
            match get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL")).as_deref() {
                None | Some("http/protobuf") => Protocol::HttpBinary,
                Some("http/json") => Protocol::HttpJson,
                Some(other) => bail!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={other}: herald speaks OTLP over HTTP (http/protobuf or http/json)"
                ),
            };
        // The URL is not repeated: it may hold credentials.
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            bail!("the OTLP traces endpoint is not an http:// or https:// URL");
        }
        Ok(Settings {
            enabled: asked && !disabled,
            protocol,
            endpoint,
            service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "herald".into()),
            batch_delay: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        Settings::from_env(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn off_unless_asked() {
        assert!(!read(&[]).unwrap().enabled);
        let on = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")]).unwrap();
        assert!(on.enabled);
        assert_eq!(on.endpoint.as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(on.service_name, "herald");
        assert!(read(&[("OTEL_TRACES_EXPORTER", "otlp")]).unwrap().enabled);
        let both =
            [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"), ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/t")];
        assert_eq!(read(&both).unwrap().endpoint.as_deref(), Some("http://b:2/t"));
        for off in [("OTEL_TRACES_EXPORTER", "none"), ("OTEL_SDK_DISABLED", "true")] {
            assert!(!read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"), off]).unwrap().enabled, "{off:?}");
        }
    }

    #[test]
    fn says_what_it_cannot_do() {
        for bad in [
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"),
        ] {
            assert!(read(&[bad]).is_err(), "{bad:?}");
        }
        let json = read(&[("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).unwrap();
        assert_eq!(json.protocol, Protocol::HttpJson);
    }
}
