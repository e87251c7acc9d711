//! Topics on the store: publishing (the dedupe window, then one delivery
//! row per subscription the event is for), subscription definitions, and
//! forgetting what nobody needs any more. Runs inside the writer.

use std::{collections::HashMap, sync::Arc};

use herald_broker::{CloudEvent, Published, Put, RawSubscription, Subscription, subscription::INTERNAL_PREFIX};
use herald_core::Time;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    codec::{json, ms},
    deliveries,
};
use crate::{Error, Result};

/// The subscriptions, parsed, by name: read on every publish, so kept in
/// memory and changed only by the writer, in the transaction that changes
/// the table.
#[derive(Default)]
pub struct Subs {
    by_name: HashMap<String, Arc<Subscription>>,
}

impl Subs {
    pub fn get(&self, name: &str) -> Option<Arc<Subscription>> {
        self.by_name.get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Subscription>> {
        let mut v: Vec<_> = self.by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn for_topic<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Arc<Subscription>> + 'a {
        self.by_name.values().filter(move |s| s.topic == topic)
    }
}

/// A stored definition as a subscription: herald's own by their name.
fn parse(name: &str, spec: &str) -> Result<Subscription> {
    let raw: RawSubscription =
        serde_json::from_str(spec).map_err(|e| Error::Corrupt(format!("subscription {name}: {e}")))?;
    if name.starts_with(INTERNAL_PREFIX) {
        return Ok(Subscription::internal(&raw.topic, raw.filter.map(|f| f.types).unwrap_or_default()));
    }
    Subscription::parse(name, raw).map_err(|e| Error::Corrupt(e.to_string()))
}

pub fn load(conn: &Connection) -> Result<Subs> {
    let mut stmt = conn.prepare("SELECT name, spec FROM subscriptions")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut subs = Subs::default();
    for row in rows {
        let (name, spec) = row?;
        let sub = parse(&name, &spec)?;
        subs.by_name.insert(name, Arc::new(sub));
    }
    Ok(subs)
}

/// Appends the events; answers what each did and which subscriptions got
/// something to deliver.
pub fn publish(
    conn: &Connection,
    subs: &Subs,
    topic: &str,
    events: &[CloudEvent],
    window: chrono::Duration,
    now: Time,
) -> Result<(Vec<Published>, Vec<String>)> {
    let mut out = Vec::with_capacity(events.len());
    let mut woken: Vec<String> = Vec::new();
    let targets: Vec<&Arc<Subscription>> = subs.for_topic(topic).collect();
    for e in events {
        let seen: Option<i64> = conn
            .prepare_cached(
                "SELECT seq FROM event_ids WHERE topic = ?1 AND source = ?2 AND id = ?3 AND expires_at > ?4",
            )?
            .query_row(params![topic, e.source, e.id, ms(now)], |r| r.get(0))
            .optional()?;
        if let Some(seq) = seen {
            out.push(Published { id: e.id.clone(), source: e.source.clone(), seq: seq as u64, duplicate: true });
            continue;
        }
        let seq: i64 = conn
            .prepare_cached("INSERT INTO topic_events (topic, published_at, body) VALUES (?1, ?2, ?3) RETURNING seq")?
            .query_row(params![topic, ms(now), json(e)?], |r| r.get(0))?;
        conn.prepare_cached(
            "INSERT INTO event_ids (topic, source, id, seq, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (topic, source, id) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at",
        )?
        .execute(params![topic, e.source, e.id, seq, ms(now + window)])?;
        for sub in targets.iter().filter(|s| s.filter.matches(e)) {
            deliveries::insert(conn, &sub.name, seq, e.ordering_key(), now)?;
            if !woken.contains(&sub.name) {
                woken.push(sub.name.clone());
            }
        }
        out.push(Published { id: e.id.clone(), source: e.source.clone(), seq: seq as u64, duplicate: false });
    }
    Ok((out, woken))
}

pub fn put(conn: &Connection, subs: &mut Subs, sub: &Subscription, now: Time) -> Result<Put> {
    let spec = json(&sub.raw)?;
    let old: Option<String> = conn
        .prepare_cached("SELECT spec FROM subscriptions WHERE name = ?1")?
        .query_row([&sub.name], |r| r.get(0))
        .optional()?;
    let put = match old {
        Some(o) if o == spec => return Ok(Put::Unchanged),
        Some(_) => Put::Updated,
        None => Put::Created,
    };
    conn.prepare_cached(
        "INSERT INTO subscriptions (name, topic, spec, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, spec = excluded.spec",
    )?
    .execute(params![sub.name, sub.topic, spec, ms(now)])?;
    subs.by_name.insert(sub.name.clone(), Arc::new(sub.clone()));
    Ok(put)
}

pub fn delete(conn: &Connection, subs: &mut Subs, name: &str) -> Result<bool> {
    conn.prepare_cached("DELETE FROM deliveries WHERE sub = ?1")?.execute([name])?;
    let gone = conn.prepare_cached("DELETE FROM subscriptions WHERE name = ?1")?.execute([name])? == 1;
    subs.by_name.remove(name);
    Ok(gone)
}

/// Rows pruned per call, so housekeeping never holds the writer long.
const PRUNE_BATCH: i64 = 5000;

/// Forgets event ids past their window and events no subscription still
/// owes (kept a minute, so a publish answered moments ago stays readable).
pub fn prune(conn: &Connection, now: Time) -> Result<usize> {
    let ids = conn
        .prepare_cached(
            "DELETE FROM event_ids WHERE (topic, source, id) IN
               (SELECT topic, source, id FROM event_ids WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![ms(now), PRUNE_BATCH])?;
    let events = conn
        .prepare_cached(
            "DELETE FROM topic_events WHERE seq IN
               (SELECT seq FROM topic_events e WHERE e.published_at < ?1
                  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = e.seq) ORDER BY seq LIMIT ?2)",
        )?
        .execute(params![ms(now - chrono::Duration::minutes(1)), PRUNE_BATCH])?;
    Ok(ids + events)
}
