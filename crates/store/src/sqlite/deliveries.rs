//! What subscriptions owe their consumers: one row per (subscription,
//! event) from publish until acknowledged or dead-lettered. Leasing,
//! answering, retrying and giving up all run inside the writer, so two
//! pullers can never hold the same row.
//!
//! Per-key order: only the first row of an ordering key is `ready`; when it
//! leaves (acknowledged or dead-lettered) the next one of its key becomes
//! ready. Keyless rows are always ready.

use std::time::Duration;

use herald_broker::{CloudEvent, Message, Nacked, Redelivery, Stats, Subscription};
use herald_core::{Time, retry::AttemptError};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    codec::{json, ms, time},
    dead,
};
use crate::{DeadLetter, DeadLetterKind, Error, Result};

/// What a consumer gets when its lease ran out without an answer.
const LEASE_ENDED: &str = "not acknowledged before its lease ended";

pub fn insert(conn: &Connection, sub: &str, seq: i64, key: Option<&str>, now: Time) -> Result<()> {
    let ready = match key {
        None => true,
        Some(k) => conn
            .prepare_cached("SELECT 1 FROM deliveries WHERE sub = ?1 AND key = ?2 LIMIT 1")?
            .query_row(params![sub, k], |_| Ok(()))
            .optional()?
            .is_none(),
    };
    conn.prepare_cached("INSERT INTO deliveries (sub, seq, key, ready, due_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![sub, seq, key, ready, ms(now)])?;
    Ok(())
}

/// A row leaves: the next one of its key, if any, becomes ready.
fn remove(conn: &Connection, id: i64, sub: &str, key: Option<&str>) -> Result<()> {
    conn.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?.execute([id])?;
    match key {
        Some(k) => next_of_key(conn, sub, k),
        None => Ok(()),
    }
}

fn next_of_key(conn: &Connection, sub: &str, key: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE deliveries SET ready = 1 WHERE id = (SELECT MIN(id) FROM deliveries WHERE sub = ?1 AND key = ?2)",
    )?
    .execute(params![sub, key])?;
    Ok(())
}

struct Row {
    id: i64,
    seq: i64,
    key: Option<String>,
    attempts: u32,
    lease: Option<i64>,
    errors: Vec<AttemptError>,
    body: String,
    published_at: i64,
}

fn errors_of(text: &str) -> Result<Vec<AttemptError>> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("a delivery's errors: {e}")))
}

fn event_of(body: &str) -> Result<CloudEvent> {
    serde_json::from_str(body).map_err(|e| Error::Corrupt(format!("a stored event: {e}")))
}

/// Gives up on a row: it leaves the subscription for the dead letters.
fn bury(conn: &Connection, sub: &Subscription, row: Row, now: Time) -> Result<()> {
    let event: serde_json::Value =
        serde_json::from_str(&row.body).map_err(|e| Error::Corrupt(format!("a stored event: {e}")))?;
    let letter = DeadLetter {
        id: 0,
        kind: DeadLetterKind::Event,
        subscription: Some(sub.name.clone()),
        topic: Some(sub.topic.clone()),
        workflow: None,
        operation_id: None,
        step: None,
        attempts: row.attempts,
        error: row.errors.last().map(|e| e.error.clone()).unwrap_or_default(),
        errors: row.errors,
        payload: event,
        created_at: now,
    };
    dead::insert(conn, &letter)?;
    remove(conn, row.id, &sub.name, row.key.as_deref())
}

/// Leases up to `max` due rows. Rows whose lease ran out count that as a
/// failed attempt; rows out of attempts are buried instead of leased.
/// Answers the messages and whether a key moved on (others may want to know).
pub fn pull(
    conn: &Connection,
    sub: &Subscription,
    max: usize,
    lease: Duration,
    now: Time,
) -> Result<(Vec<Message>, bool)> {
    let mut messages = Vec::new();
    let mut moved = false;
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    // Burying rows can make others ready: look again, a bounded number of times.
    for _ in 0..8 {
        let want = max - messages.len();
        let rows = due_rows(conn, &sub.name, want, now)?;
        let fetched = rows.len();
        let mut buried = false;
        for mut row in rows {
            let lease_ended = row.lease.is_some();
            if lease_ended {
                row.errors.push(AttemptError { attempt: row.attempts, at: now, error: LEASE_ENDED.into() });
            }
            if sub.retry.exhausted(row.attempts) {
                bury(conn, sub, row, now)?;
                buried = true;
                moved = true;
                continue;
            }
            let token = rand::random::<u32>() as i64;
            if lease_ended {
                conn.prepare_cached("UPDATE deliveries SET errors = ?2 WHERE id = ?1")?
                    .execute(params![row.id, json(&row.errors)?])?;
            }
            conn.prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, lease = ?2, due_at = ?3 WHERE id = ?1",
            )?
            .execute(params![row.id, token, ms(until)])?;
            messages.push(Message {
                ack_id: format!("{}.{token:x}", row.id),
                attempt: row.attempts + 1,
                seq: row.seq as u64,
                published_at: time(row.published_at)?,
                event: event_of(&row.body)?,
            });
        }
        if !buried || fetched < want || messages.len() >= max {
            break;
        }
    }
    Ok((messages, moved))
}

fn due_rows(conn: &Connection, sub: &str, limit: usize, now: Time) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.seq, d.key, d.attempts, d.lease, d.errors, e.body, e.published_at
         FROM deliveries d JOIN topic_events e ON e.seq = d.seq
         WHERE d.sub = ?1 AND d.ready = 1 AND d.due_at <= ?2
         ORDER BY d.due_at, d.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![sub, ms(now), limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, String>(5)?, r.get(6)?, r.get(7)?))
    })?;
    rows.map(|r| {
        let (id, seq, key, attempts, lease, errors, body, published_at) = r?;
        Ok(Row { id, seq, key, attempts, lease, errors: errors_of(&errors)?, body, published_at })
    })
    .collect()
}

/// The leased row an ack id names, if its lease still stands.
fn leased(conn: &Connection, sub: &str, ack_id: &str) -> Result<Option<Row>> {
    let Some((id, token)) = parse_ack_id(ack_id) else { return Ok(None) };
    let row = conn
        .prepare_cached(
            "SELECT d.id, d.seq, d.key, d.attempts, d.lease, d.errors, e.body, e.published_at
             FROM deliveries d JOIN topic_events e ON e.seq = d.seq
             WHERE d.id = ?1 AND d.sub = ?2 AND d.lease = ?3",
        )?
        .query_row(params![id, sub, token], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, String>(5)?, r.get(6)?, r.get(7)?))
        })
        .optional()?;
    row.map(|(id, seq, key, attempts, lease, errors, body, published_at)| {
        Ok(Row { id, seq, key, attempts, lease, errors: errors_of(&errors)?, body, published_at })
    })
    .transpose()
}

/// An ack id's parts: the delivery row and its lease token.
fn parse_ack_id(ack_id: &str) -> Option<(i64, i64)> {
    let (id, token) = ack_id.split_once('.')?;
    Some((id.parse().ok()?, i64::from_str_radix(token, 16).ok()?))
}

/// Answers the ack ids that held no lease, and whether a key moved on.
pub fn ack(conn: &Connection, sub: &str, ack_ids: &[String]) -> Result<(Vec<String>, bool)> {
    let mut unknown = Vec::new();
    let mut moved = false;
    let mut delete =
        conn.prepare_cached("DELETE FROM deliveries WHERE id = ?1 AND sub = ?2 AND lease = ?3 RETURNING key")?;
    for ack_id in ack_ids {
        let gone: Option<Option<String>> = match parse_ack_id(ack_id) {
            Some((id, token)) => delete.query_row(params![id, sub, token], |r| r.get(0)).optional()?,
            None => None,
        };
        match gone {
            Some(key) => {
                if let Some(k) = key {
                    moved = true;
                    next_of_key(conn, sub, &k)?;
                }
            }
            None => unknown.push(ack_id.clone()),
        }
    }
    Ok((unknown, moved))
}

pub fn nack(
    conn: &Connection,
    sub: &Subscription,
    ack_ids: &[String],
    redelivery: Redelivery,
    error: &str,
    now: Time,
    sample: f64,
) -> Result<Nacked> {
    let mut out = Nacked::default();
    for ack_id in ack_ids {
        let Some(mut row) = leased(conn, &sub.name, ack_id)? else {
            out.unknown.push(ack_id.clone());
            continue;
        };
        if let Redelivery::Unsent(wait) = redelivery {
            // Never reached the consumer: its attempt does not count.
            let due = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            conn.prepare_cached(
                "UPDATE deliveries SET lease = NULL, due_at = ?2, attempts = attempts - 1 WHERE id = ?1",
            )?
            .execute(params![row.id, ms(due)])?;
            out.retrying += 1;
            continue;
        }
        row.errors.push(AttemptError { attempt: row.attempts, at: now, error: error.to_string() });
        let wait = match redelivery {
            _ if sub.retry.exhausted(row.attempts) => None,
            Redelivery::Never => None,
            Redelivery::After(d) | Redelivery::Unsent(d) => Some(d),
            Redelivery::Backoff => Some(sub.retry.delay_before(row.attempts + 1, sample)),
        };
        let Some(wait) = wait else {
            bury(conn, sub, row, now)?;
            out.dead_lettered += 1;
            continue;
        };
        let due = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        conn.prepare_cached("UPDATE deliveries SET lease = NULL, due_at = ?2, errors = ?3 WHERE id = ?1")?
            .execute(params![row.id, ms(due), json(&row.errors)?])?;
        out.retrying += 1;
    }
    Ok(out)
}

/// A redriven event: a copy of its own, owed to this subscription only.
pub fn redeliver(conn: &Connection, sub: &Subscription, event: &CloudEvent, now: Time) -> Result<()> {
    let seq: i64 = conn
        .prepare_cached("INSERT INTO topic_events (topic, published_at, body) VALUES (?1, ?2, ?3) RETURNING seq")?
        .query_row(params![sub.topic, ms(now), json(event)?], |r| r.get(0))?;
    insert(conn, &sub.name, seq, event.ordering_key(), now)
}

pub fn stats(conn: &Connection, sub: &str, now: Time) -> Result<Stats> {
    let (total, out, oldest): (i64, Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT COUNT(*), SUM(d.lease IS NOT NULL AND d.due_at > ?2), MIN(e.published_at)
             FROM deliveries d JOIN topic_events e ON e.seq = d.seq WHERE d.sub = ?1",
        )?
        .query_row(params![sub, ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let in_flight = out.unwrap_or(0) as u64;
    Ok(Stats {
        pending: total as u64 - in_flight,
        in_flight,
        lag_ms: oldest.map_or(0, |o| (ms(now) - o).max(0) as u64),
        dead_letters: dead::count_for_subscription(conn, sub)?,
    })
}

pub fn next_due(conn: &Connection, sub: &str) -> Result<Option<Time>> {
    let due: Option<i64> = conn
        .prepare_cached("SELECT MIN(due_at) FROM deliveries WHERE sub = ?1 AND ready = 1")?
        .query_row([sub], |r| r.get(0))?;
    due.map(time).transpose()
}
