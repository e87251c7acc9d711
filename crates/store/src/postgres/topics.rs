//! The statements behind topics on PostgreSQL: events, the ids that
//! dedupe them, subscription definitions, housekeeping. Nothing here
//! decides; [`crate::policy::broker`] does, through [`super::topics_tx`].
//!
//! Several nodes publish at once, so:
//! - an event's source and id are read under their advisory lock: a
//!   second publish of them waits for the first to end and finds it;
//! - a publish reads its topic's subscriptions `FOR KEY SHARE`: a delete
//!   of one waits for the publish to commit, and then drops what it
//!   queued (see `policy::broker::delete`);
//! - subscriptions are read from the table each time, never cached: a
//!   change made on another node is seen at once.

use herald_broker::Subscription;
use herald_core::Time;
use sqlx::PgConnection;

use super::rows::{EVENT_ID_LOCK, lock_key};
use crate::{Result, codec::ms, policy::broker::subscription};

fn parsed(rows: Vec<(String, String)>) -> Result<Vec<Subscription>> {
    rows.iter().map(|(name, spec)| subscription(name, spec)).collect()
}

/// The topic's subscriptions, each kept from being deleted until this
/// transaction ends.
pub async fn for_topic(c: &mut PgConnection, topic: &str) -> Result<Vec<Subscription>> {
    let rows = sqlx::query_as("SELECT name, spec FROM subscriptions WHERE topic = $1 ORDER BY name FOR KEY SHARE")
        .bind(topic)
        .fetch_all(c)
        .await?;
    parsed(rows)
}

pub async fn by_name(c: &mut PgConnection, name: &str) -> Result<Option<Subscription>> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT name, spec FROM subscriptions WHERE name = $1").bind(name).fetch_optional(c).await?;
    row.map(|(name, spec)| subscription(&name, &spec)).transpose()
}

pub async fn all(c: &mut PgConnection) -> Result<Vec<Subscription>> {
    parsed(sqlx::query_as("SELECT name, spec FROM subscriptions ORDER BY name").fetch_all(c).await?)
}

/// The stored definition, locked: two puts of one name go one after the
/// other (and, the name being the key, neither waits for publishes).
pub async fn spec(c: &mut PgConnection, name: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT spec FROM subscriptions WHERE name = $1 FOR NO KEY UPDATE")
        .bind(name)
        .fetch_optional(c)
        .await?)
}

pub async fn upsert(c: &mut PgConnection, name: &str, topic: &str, spec: &str, now: Time) -> Result<()> {
    sqlx::query(
        "INSERT INTO subscriptions (name, topic, spec, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, spec = excluded.spec",
    )
    .bind(name)
    .bind(topic)
    .bind(spec)
    .bind(ms(now))
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete(c: &mut PgConnection, name: &str) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM subscriptions WHERE name = $1").bind(name).execute(c).await?.rows_affected() == 1)
}

/// The event's place if its id is remembered, read under the id's lock,
/// held until this transaction ends.
pub async fn seen(c: &mut PgConnection, topic: &str, source: &str, id: &str, now: Time) -> Result<Option<i64>> {
    lock_key(c, EVENT_ID_LOCK, topic, &format!("{source}\u{1f}{id}")).await?;
    Ok(sqlx::query_scalar("SELECT seq FROM event_ids WHERE topic = $1 AND source = $2 AND id = $3 AND expires_at > $4")
        .bind(topic)
        .bind(source)
        .bind(id)
        .bind(ms(now))
        .fetch_optional(c)
        .await?)
}

pub async fn insert_event(c: &mut PgConnection, topic: &str, body: &str, now: Time) -> Result<i64> {
    Ok(sqlx::query_scalar("INSERT INTO topic_events (topic, published_at, body) VALUES ($1, $2, $3) RETURNING seq")
        .bind(topic)
        .bind(ms(now))
        .bind(body)
        .fetch_one(c)
        .await?)
}

/// Remembers the id; one remembered past its window is taken over.
pub async fn remember(
    c: &mut PgConnection,
    topic: &str,
    source: &str,
    id: &str,
    seq: i64,
    expires: Time,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO event_ids (topic, source, id, seq, expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (topic, source, id) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at",
    )
    .bind(topic)
    .bind(source)
    .bind(id)
    .bind(seq)
    .bind(ms(expires))
    .execute(c)
    .await?;
    Ok(())
}

pub async fn forget_ids(c: &mut PgConnection, now: Time, limit: usize) -> Result<usize> {
    let n = sqlx::query(
        "DELETE FROM event_ids WHERE (topic, source, id) IN
           (SELECT topic, source, id FROM event_ids WHERE expires_at <= $1 LIMIT $2)",
    )
    .bind(ms(now))
    .bind(limit as i64)
    .execute(c)
    .await?;
    Ok(n.rows_affected() as usize)
}

pub async fn drop_unowed(c: &mut PgConnection, before: Time, limit: usize) -> Result<usize> {
    let n = sqlx::query(
        "DELETE FROM topic_events WHERE seq IN
           (SELECT seq FROM topic_events e WHERE e.published_at < $1
              AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = e.seq) ORDER BY seq LIMIT $2)",
    )
    .bind(ms(before))
    .bind(limit as i64)
    .execute(c)
    .await?;
    Ok(n.rows_affected() as usize)
}
