//! Topics on SQLite: the subscriptions kept in memory, and the statements
//! behind publishing, subscription definitions and housekeeping. Nothing
//! here decides; [`crate::policy::broker`] does, through [`super::topics_tx`].

use std::{collections::HashMap, sync::Arc};

use herald_broker::Subscription;
use herald_core::Time;
use rusqlite::{Connection, OptionalExtension, params};

use super::codec::ms;
use crate::{Result, policy::broker::subscription};

/// The subscriptions, parsed, by name: read on every publish, so kept in
/// memory. The writer is the only one to change the table, so it changes
/// this beside it.
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

    pub fn for_topic<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Subscription> + 'a {
        self.by_name.values().filter(move |s| s.topic == topic).map(|s| &**s)
    }

    pub fn insert(&mut self, sub: Subscription) {
        self.by_name.insert(sub.name.clone(), Arc::new(sub));
    }

    pub fn remove(&mut self, name: &str) {
        self.by_name.remove(name);
    }
}

pub fn load(conn: &Connection) -> Result<Subs> {
    let mut stmt = conn.prepare("SELECT name, spec FROM subscriptions")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut subs = Subs::default();
    for row in rows {
        let (name, spec) = row?;
        subs.insert(subscription(&name, &spec)?);
    }
    Ok(subs)
}

pub fn spec(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT spec FROM subscriptions WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

pub fn upsert(conn: &Connection, name: &str, topic: &str, spec: &str, now: Time) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO subscriptions (name, topic, spec, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, spec = excluded.spec",
    )?
    .execute(params![name, topic, spec, ms(now)])?;
    Ok(())
}

pub fn delete(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM subscriptions WHERE name = ?1")?.execute([name])? == 1)
}

pub fn seen(conn: &Connection, topic: &str, source: &str, id: &str, now: Time) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT seq FROM event_ids WHERE topic = ?1 AND source = ?2 AND id = ?3 AND expires_at > ?4")?
        .query_row(params![topic, source, id, ms(now)], |r| r.get(0))
        .optional()?)
}

pub fn insert_event(conn: &Connection, topic: &str, body: &str, now: Time) -> Result<i64> {
    Ok(conn
        .prepare_cached("INSERT INTO topic_events (topic, published_at, body) VALUES (?1, ?2, ?3) RETURNING seq")?
        .query_row(params![topic, ms(now), body], |r| r.get(0))?)
}

pub fn remember(conn: &Connection, topic: &str, source: &str, id: &str, seq: i64, expires: Time) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO event_ids (topic, source, id, seq, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (topic, source, id) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at",
    )?
    .execute(params![topic, source, id, seq, ms(expires)])?;
    Ok(())
}

pub fn forget_ids(conn: &Connection, now: Time, limit: usize) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM event_ids WHERE (topic, source, id) IN
               (SELECT topic, source, id FROM event_ids WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![ms(now), limit as i64])?)
}

pub fn drop_unowed(conn: &Connection, before: Time, limit: usize) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM topic_events WHERE seq IN
               (SELECT seq FROM topic_events e WHERE e.published_at < ?1
                  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = e.seq) ORDER BY seq LIMIT ?2)",
        )?
        .execute(params![ms(before), limit as i64])?)
}
