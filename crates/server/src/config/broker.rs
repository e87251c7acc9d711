//! `broker` in the configuration: the broker's URL alone
//! (`broker = "nats://…"`, `HERALD_BROKER=nats://…`), or the `[broker]`
//! table with `url` and the other settings (`HERALD_BROKER__URL`). A
//! variable `HERALD_BROKER` stands for the whole table, as any variable
//! does for the key it names: the file's other `[broker]` settings then
//! take their defaults.

use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor, value::MapAccessDeserializer},
};

use super::BrokerConfig;

pub fn url_or_table<'de, D: Deserializer<'de>>(d: D) -> Result<BrokerConfig, D::Error> {
    struct UrlOrTable;

    impl<'de> Visitor<'de> for UrlOrTable {
        type Value = BrokerConfig;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a broker URL (nats://…) or a [broker] table")
        }

        fn visit_str<E: de::Error>(self, url: &str) -> Result<BrokerConfig, E> {
            Ok(BrokerConfig { url: Some(url.to_string()), ..BrokerConfig::default() })
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BrokerConfig, A::Error> {
            // The table's own errors (an unknown key, a bad value) as they were.
            BrokerConfig::deserialize(MapAccessDeserializer::new(map))
        }
    }

    d.deserialize_any(UrlOrTable)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use crate::config::Config;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn the_broker_is_a_url_alone_or_a_table_with_one() {
        let alone = Config::load(Some(file("broker = \"nats://127.0.0.1:4222\"\n").path()), []).unwrap();
        assert_eq!(alone.broker.url.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(alone.broker.max_batch, 1000, "the other settings keep their defaults");

        let table = "[broker]\nurl = \"nats://n:4222\"\nprefix = \"shop\"\nmax_batch = 5\n";
        let table = Config::load(Some(file(table).path()), []).unwrap();
        assert_eq!((table.broker.url.as_deref(), table.broker.prefix.as_str()), (Some("nats://n:4222"), "shop"));
        assert_eq!(table.broker.max_batch, 5);

        let env = Config::load(None, [("HERALD_BROKER".to_string(), "nats://e:4222".to_string())]).unwrap();
        assert_eq!(env.broker.url.as_deref(), Some("nats://e:4222"));
        assert_eq!(Config::load(None, []).unwrap().broker.url, None, "by default, topics live in the store");
    }

    #[test]
    fn a_bad_broker_table_is_still_named() {
        let err = Config::load(Some(file("[broker]\nmax_bacth = 5\n").path()), []).unwrap_err().to_string();
        assert!(err.contains("max_bacth"), "{err}");
    }
}
