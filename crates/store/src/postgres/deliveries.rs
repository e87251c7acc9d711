//! The statements behind what subscriptions owe their consumers, on
//! PostgreSQL (see [`crate::policy::broker`] for what they mean).
//!
//! Several nodes pull at once: due rows are taken `FOR UPDATE SKIP
//! LOCKED`, so two pullers never lease one row and never wait on each
//! other, and a row answered by ack id is locked as it is read. Whether a
//! key's row is `ready` is decided under the (subscription, key) advisory
//! lock ([`lock_key`]), by publishes and by whoever removes its first row.

use herald_core::{Time, retry::AttemptError};
use sqlx::PgConnection;

use super::rows::{DELIVERY_KEY_LOCK, lock_key as lock};
use crate::{
    Result,
    codec::{DeliveryRawRow, delivery, json, ms, select_delivery, time},
    tx::DeliveryRow,
};

/// Holds the subscription's key until this transaction ends.
pub async fn lock_key(c: &mut PgConnection, sub: &str, key: &str) -> Result<()> {
    lock(c, DELIVERY_KEY_LOCK, sub, key).await
}

pub async fn key_waiting(c: &mut PgConnection, sub: &str, key: &str) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM deliveries WHERE sub = $1 AND key = $2)")
        .bind(sub)
        .bind(key)
        .fetch_one(c)
        .await?)
}

pub async fn insert(
    c: &mut PgConnection,
    sub: &str,
    seq: i64,
    key: Option<&str>,
    ready: bool,
    due: Time,
) -> Result<()> {
    sqlx::query("INSERT INTO deliveries (sub, seq, key, ready, due_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(sub)
        .bind(seq)
        .bind(key)
        .bind(ready)
        .bind(ms(due))
        .execute(c)
        .await?;
    Ok(())
}

pub async fn delete_for(c: &mut PgConnection, sub: &str) -> Result<()> {
    sqlx::query("DELETE FROM deliveries WHERE sub = $1").bind(sub).execute(c).await?;
    Ok(())
}

pub async fn delete(c: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM deliveries WHERE id = $1").bind(id).execute(c).await?;
    Ok(())
}

pub async fn next_of_key(c: &mut PgConnection, sub: &str, key: &str) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET ready = TRUE
         WHERE id = (SELECT MIN(id) FROM deliveries WHERE sub = $1 AND key = $2)",
    )
    .bind(sub)
    .bind(key)
    .execute(c)
    .await?;
    Ok(())
}

/// Due ready rows no other transaction holds, locked until this one ends.
pub async fn due(c: &mut PgConnection, sub: &str, limit: usize, now: Time) -> Result<Vec<DeliveryRow>> {
    let rows: Vec<DeliveryRawRow> = sqlx::query_as(concat!(
        select_delivery!(),
        "WHERE d.sub = $1 AND d.ready AND d.due_at <= $2 ORDER BY d.due_at, d.id LIMIT $3
         FOR UPDATE OF d SKIP LOCKED"
    ))
    .bind(sub)
    .bind(ms(now))
    .bind(limit as i64)
    .fetch_all(c)
    .await?;
    rows.into_iter().map(delivery).collect()
}

/// The row `token` leases, locked: a second answer for it waits, and
/// then finds the lease gone.
pub async fn leased(c: &mut PgConnection, sub: &str, id: i64, token: i64) -> Result<Option<DeliveryRow>> {
    let row: Option<DeliveryRawRow> =
        sqlx::query_as(concat!(select_delivery!(), "WHERE d.id = $1 AND d.sub = $2 AND d.lease = $3 FOR UPDATE OF d"))
            .bind(id)
            .bind(sub)
            .bind(token)
            .fetch_optional(c)
            .await?;
    row.map(delivery).transpose()
}

pub async fn lease(
    c: &mut PgConnection,
    id: i64,
    token: i64,
    until: Time,
    errors: Option<&[AttemptError]>,
) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET attempts = attempts + 1, lease = $2, due_at = $3, errors = COALESCE($4, errors)
         WHERE id = $1",
    )
    .bind(id)
    .bind(token)
    .bind(ms(until))
    .bind(errors.map(|e| json(&e)).transpose()?)
    .execute(c)
    .await?;
    Ok(())
}

/// Ends the lease; without `errors` the attempt is taken back.
pub async fn release(c: &mut PgConnection, id: i64, due: Time, errors: Option<&[AttemptError]>) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET lease = NULL, due_at = $2, errors = COALESCE($3, errors),
             attempts = CASE WHEN $3::TEXT IS NULL THEN attempts - 1 ELSE attempts END
         WHERE id = $1",
    )
    .bind(id)
    .bind(ms(due))
    .bind(errors.map(|e| json(&e)).transpose()?)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn ack(c: &mut PgConnection, sub: &str, id: i64, token: i64) -> Result<Option<Option<String>>> {
    Ok(sqlx::query_scalar("DELETE FROM deliveries WHERE id = $1 AND sub = $2 AND lease = $3 RETURNING key")
        .bind(id)
        .bind(sub)
        .bind(token)
        .fetch_optional(c)
        .await?)
}

pub async fn counts(c: &mut PgConnection, sub: &str, now: Time) -> Result<(u64, u64, Option<Time>)> {
    let (total, out, oldest): (i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE d.lease IS NOT NULL AND d.due_at > $2), MIN(e.published_at)
         FROM deliveries d JOIN topic_events e ON e.seq = d.seq WHERE d.sub = $1",
    )
    .bind(sub)
    .bind(ms(now))
    .fetch_one(c)
    .await?;
    Ok((total as u64, out as u64, oldest.map(time).transpose()?))
}

pub async fn dead_letters(c: &mut PgConnection, sub: &str) -> Result<u64> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE subscription = $1").bind(sub).fetch_one(c).await?;
    Ok(n as u64)
}

pub async fn next_due(c: &mut PgConnection, sub: &str) -> Result<Option<Time>> {
    let due: Option<i64> = sqlx::query_scalar("SELECT MIN(due_at) FROM deliveries WHERE sub = $1 AND ready")
        .bind(sub)
        .fetch_one(c)
        .await?;
    due.map(time).transpose()
}
