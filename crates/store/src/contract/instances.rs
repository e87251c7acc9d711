//! Service instances registered at run time: stored, renewed in place,
//! changed, listed until they expire, deleted and pruned.

use chrono::{Duration, Utc};
use herald_core::Time;
use serde_json::json;

use super::Harness;
use crate::{Registered, RegisteredInstance};

/// Instance `id` of `shop` at `url`, registered at `at` for `ttl`.
pub fn registered(id: &str, url: &str, at: Time, ttl: Duration) -> RegisteredInstance {
    RegisteredInstance {
        service: "shop".into(),
        id: id.into(),
        url: url.into(),
        metadata: json!({ "zone": "eu" }),
        expires_at: at + ttl,
        registered_at: at,
    }
}

pub async fn a_registered_instance_is_listed_as_stored_until_it_expires(h: &impl Harness) {
    let store = h.store();
    let now = Utc::now();
    let a = registered("a", "http://10.0.0.1:8080", now, Duration::seconds(30));
    let b =
        RegisteredInstance { service: "cart".into(), ..registered("b", "http://10.0.0.2", now, Duration::seconds(5)) };

    assert_eq!(store.put_instance(&a).await.unwrap(), Registered::Created);
    assert_eq!(store.put_instance(&b).await.unwrap(), Registered::Created);

    // Stored times are milliseconds: compare as stored.
    let as_stored = |i: &RegisteredInstance| {
        let ms = |t: Time| t.timestamp_millis();
        (i.service.clone(), i.id.clone(), i.url.clone(), i.metadata.clone(), ms(i.expires_at), ms(i.registered_at))
    };
    let listed: Vec<_> = store.instances(now).await.unwrap().iter().map(as_stored).collect();
    assert_eq!(listed, [as_stored(&b), as_stored(&a)], "by service, then id");
    let later: Vec<_> = store.instances(now + Duration::seconds(10)).await.unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(later, ["a"], "b's TTL has passed");
}

pub async fn a_heartbeat_renews_one_row_and_a_new_url_changes_it(h: &impl Harness) {
    let store = h.store();
    let first = Utc::now();
    let a = registered("a", "http://10.0.0.1", first, Duration::seconds(2));
    assert_eq!(store.put_instance(&a).await.unwrap(), Registered::Created);

    let beat = registered("a", "http://10.0.0.1", first + Duration::seconds(1), Duration::seconds(60));
    assert_eq!(store.put_instance(&beat).await.unwrap(), Registered::Renewed);

    let listed = store.instances(first + Duration::seconds(30)).await.unwrap();
    assert_eq!(listed.len(), 1, "one row: {listed:?}");
    assert_eq!(listed[0].expires_at.timestamp_millis(), beat.expires_at.timestamp_millis(), "the expiry moved on");
    assert_eq!(listed[0].registered_at.timestamp_millis(), first.timestamp_millis(), "the registration stays");

    let moved = registered("a", "http://10.0.0.9", first + Duration::seconds(2), Duration::seconds(60));
    assert_eq!(store.put_instance(&moved).await.unwrap(), Registered::Changed);
    let listed = store.instances(first + Duration::seconds(30)).await.unwrap();
    assert_eq!((listed.len(), listed[0].url.as_str()), (1, "http://10.0.0.9"));
    assert_eq!(listed[0].registered_at.timestamp_millis(), moved.registered_at.timestamp_millis(), "a new one");

    let back = registered("a", "http://10.0.0.9", first + Duration::seconds(90), Duration::seconds(60));
    assert_eq!(store.put_instance(&back).await.unwrap(), Registered::Created, "it had expired: new again");
}

pub async fn a_deleted_instance_is_gone_and_pruning_drops_only_expired_ones(h: &impl Harness) {
    let store = h.store();
    let now = Utc::now();
    for (id, ttl) in [("a", 30), ("b", 30), ("old", 1)] {
        store.put_instance(&registered(id, "http://10.0.0.1", now, Duration::seconds(ttl))).await.unwrap();
    }

    assert!(store.delete_instance("shop", "a").await.unwrap());
    assert!(!store.delete_instance("shop", "a").await.unwrap(), "already gone");
    assert!(!store.delete_instance("cart", "b").await.unwrap(), "another service's id");

    assert_eq!(store.prune_instances(now + Duration::seconds(5)).await.unwrap(), 1, "only `old` had expired");
    let left: Vec<_> = store.instances(now).await.unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(left, ["b"]);
}
