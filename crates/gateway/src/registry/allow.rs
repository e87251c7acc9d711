//! Where instances registered at run time may be (`[registry] allow`).
//!
//! An instance's URL is where herald sends signed step calls and, through
//! the gateway, clients' requests: a token that could register any URL
//! could make herald call its cloud's metadata service or itself. So a
//! registered URL must name an address inside a listed network, or a host
//! name listed as it is. The default lists the private networks; loopback
//! and link-local addresses pass only when listed. Instances written in the
//! configuration file are trusted as they are.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Networks (`10.0.0.0/8`), addresses, or host names that registered
    /// instances may have.
    pub allow: Vec<String>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];
        RegistryConfig { allow: private.iter().map(|n| n.to_string()).collect() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Allow {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

impl Allow {
    pub fn parse(config: &RegistryConfig) -> anyhow::Result<Allow> {
        let mut allow = Allow::default();
        for entry in &config.allow {
            if let Ok(net) = entry.parse::<IpNet>() {
                allow.nets.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if !entry.is_empty() && entry.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)) {
                allow.hosts.push(entry.to_ascii_lowercase());
            } else {
                anyhow::bail!("registry.allow: `{entry}` is neither a network, an address nor a host name");
            }
        }
        Ok(allow)
    }

    /// Refuses a registered instance's URL whose host is not allowed.
    pub fn check(&self, url: &str) -> Result<(), String> {
        let uri: axum::http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
        let host = uri.host().unwrap_or("");
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let allowed = match bare.parse::<IpAddr>() {
            Ok(ip) => {
                let ip = ip.to_canonical();
                self.nets.iter().any(|n| n.contains(&ip))
            }
            Err(_) => self.hosts.iter().any(|h| h.eq_ignore_ascii_case(bare)),
        };
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "`{host}` is not where instances may be registered: add its network or name to `[registry] allow`"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_networks_pass_by_default_and_nothing_else() {
        let allow = Allow::parse(&RegistryConfig::default()).unwrap();
        for ok in ["http://10.1.2.3:80", "http://192.168.0.9", "http://[fd00::1]:8080/base"] {
            assert!(allow.check(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://127.0.0.1:8080",
            "http://169.254.169.254",
            "http://[::1]",
            "http://[::ffff:127.0.0.1]",
            "http://localhost",
            "http://203.0.113.5",
            "http://0.0.0.0",
        ] {
            assert!(allow.check(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn listed_addresses_and_names_pass() {
        let config = RegistryConfig { allow: vec!["127.0.0.1".into(), "payments.internal".into()] };
        let allow = Allow::parse(&config).unwrap();
        assert!(allow.check("http://127.0.0.1:9").is_ok());
        assert!(allow.check("http://Payments.Internal:80").is_ok());
        assert!(allow.check("http://127.0.0.2").is_err());
        assert!(allow.check("http://payments.internal.evil").is_err());
        assert!(Allow::parse(&RegistryConfig { allow: vec!["not a net/".into()] }).is_err());
    }
}
