//! A broker's ledger on PostgreSQL (see [`crate::BrokerLedger`]), shared
//! by every node: a claim is one statement (the batch's duplicates looked
//! up, and its seqs taken from the scope's counter row, whose lock orders
//! claims), a confirm one more.

use std::ops::Range;

use herald_broker::{Claim, Claimed, Confirmed};
use sqlx::PgPool;

use crate::{Result, ledger::answered};

pub async fn claim(pool: &PgPool, scope: &str, topic: &str, claims: &[Claim], now: i64) -> Result<Vec<Claimed>> {
    let sources: Vec<&str> = claims.iter().map(|c| c.source.as_str()).collect();
    let ids: Vec<&str> = claims.iter().map(|c| c.id.as_str()).collect();
    let fresh: Vec<bool> = claims.iter().map(|c| c.fresh).collect();
    let rows: Vec<(i64, Option<i64>, i64)> = sqlx::query_as(
        "WITH input AS (
             SELECT t.n, t.source, t.id, t.fresh
             FROM unnest($3::text[], $4::text[], $5::bool[]) WITH ORDINALITY AS t(source, id, fresh, n)
         ), seen AS (
             SELECT input.n, p.seq FROM input
             JOIN ledger_publishes p
               ON p.scope = $1 AND p.topic = $2 AND p.source = input.source AND p.id = input.id
             WHERE NOT input.fresh AND p.expires_at > $6
         ), counter AS (
             INSERT INTO ledger_seqs AS s (scope, last)
             SELECT $1, (SELECT count(*) FROM input) - (SELECT count(*) FROM seen)
             ON CONFLICT (scope) DO UPDATE SET last = s.last + excluded.last
             RETURNING s.last
         )
         SELECT input.n, seen.seq, counter.last
         FROM input LEFT JOIN seen ON seen.n = input.n CROSS JOIN counter
         ORDER BY input.n",
    )
    .bind(scope)
    .bind(topic)
    .bind(&sources)
    .bind(&ids)
    .bind(&fresh)
    .bind(now)
    .fetch_all(pool)
    .await?;
    let last = rows.first().map_or(0, |r| r.2);
    Ok(answered(rows.into_iter().map(|(_, seq, _)| seq).collect(), last))
}

/// Each recognised from `during.start` (now) until `during.end`; in the
/// order of their keys, so two nodes confirming the same events at once
/// take their rows' locks in one order, and never deadlock.
pub async fn confirm(pool: &PgPool, scope: &str, topic: &str, done: &[Confirmed], during: Range<i64>) -> Result<()> {
    let mut sorted: Vec<&Confirmed> = done.iter().collect();
    sorted.sort_by(|a, b| (&a.source, &a.id).cmp(&(&b.source, &b.id)));
    let sources: Vec<&str> = sorted.iter().map(|p| p.source.as_str()).collect();
    let ids: Vec<&str> = sorted.iter().map(|p| p.id.as_str()).collect();
    let seqs: Vec<i64> = sorted.iter().map(|p| p.seq as i64).collect();
    sqlx::query(
        "INSERT INTO ledger_publishes (scope, topic, source, id, seq, expires_at)
         SELECT $1, $2, t.source, t.id, t.seq, $6 FROM unnest($3::text[], $4::text[], $5::bigint[]) AS t(source, id, seq)
         ON CONFLICT (scope, topic, source, id) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at
         WHERE ledger_publishes.expires_at <= $7",
    )
    .bind(scope)
    .bind(topic)
    .bind(&sources)
    .bind(&ids)
    .bind(&seqs)
    .bind(during.end)
    .bind(during.start)
    .execute(pool)
    .await?;
    Ok(())
}

/// At most this many at a time, so no statement runs long.
const FORGET_BATCH: i64 = 5000;

pub async fn forget(pool: &PgPool, scope: &str, now: i64) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM ledger_publishes WHERE (scope, topic, source, id) IN
           (SELECT scope, topic, source, id FROM ledger_publishes WHERE scope = $1 AND expires_at <= $2 LIMIT $3)",
    )
    .bind(scope)
    .bind(now)
    .bind(FORGET_BATCH)
    .execute(pool)
    .await?
    .rows_affected())
}

pub async fn put_definition(pool: &PgPool, scope: &str, name: &str, spec: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger_definitions (scope, name, spec) VALUES ($1, $2, $3)
         ON CONFLICT (scope, name) DO UPDATE SET spec = excluded.spec",
    )
    .bind(scope)
    .bind(name)
    .bind(spec)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn delete_definition(pool: &PgPool, scope: &str, name: &str) -> Result<bool> {
    let sql = "UPDATE ledger_definitions SET spec = NULL WHERE scope = $1 AND name = $2 AND spec IS NOT NULL";
    Ok(sqlx::query(sql).bind(scope).bind(name).execute(pool).await?.rows_affected() == 1)
}

pub async fn definition(pool: &PgPool, scope: &str, name: &str) -> Result<Option<String>> {
    let spec: Option<Option<String>> =
        sqlx::query_scalar("SELECT spec FROM ledger_definitions WHERE scope = $1 AND name = $2")
            .bind(scope)
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(spec.flatten())
}

pub async fn definitions(pool: &PgPool, scope: &str) -> Result<Vec<(String, Option<String>)>> {
    Ok(sqlx::query_as("SELECT name, spec FROM ledger_definitions WHERE scope = $1 ORDER BY name")
        .bind(scope)
        .fetch_all(pool)
        .await?)
}

pub async fn drop_scope(pool: &PgPool, scope: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    for sql in [
        "DELETE FROM ledger_seqs WHERE scope = $1",
        "DELETE FROM ledger_publishes WHERE scope = $1",
        "DELETE FROM ledger_definitions WHERE scope = $1",
    ] {
        sqlx::query(sql).bind(scope).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
