//! Service instances registered at run time: one row each, shared by
//! every node. A registration reads its row locked (`FOR UPDATE`) and
//! writes it with an upsert, so two nodes registering one instance at
//! once never fail on its key.

use herald_core::Time;
use sqlx::{PgConnection, PgPool};

use crate::{
    RegisteredInstance, Result,
    codec::{self, INSTANCE_COLUMNS, InstanceRow, json, ms, readable},
};

pub async fn get(c: &mut PgConnection, service: &str, id: &str) -> Result<Option<RegisteredInstance>> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE service = $1 AND id = $2 FOR UPDATE");
    let row: Option<InstanceRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(service).bind(id).fetch_optional(c).await?;
    row.map(codec::instance).transpose()
}

pub async fn upsert(c: &mut PgConnection, i: &RegisteredInstance) -> Result<()> {
    sqlx::query(
        "INSERT INTO instances (service, id, url, metadata, expires_at, registered_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (service, id) DO UPDATE SET url = excluded.url, metadata = excluded.metadata,
             expires_at = excluded.expires_at, registered_at = excluded.registered_at",
    )
    .bind(&i.service)
    .bind(&i.id)
    .bind(&i.url)
    .bind(json(&i.metadata)?)
    .bind(ms(i.expires_at))
    .bind(ms(i.registered_at))
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete(pool: &PgPool, service: &str, id: &str) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM instances WHERE service = $1 AND id = $2")
        .bind(service)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

pub async fn list(pool: &PgPool, now: Time) -> Result<Vec<RegisteredInstance>> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE expires_at > $1 ORDER BY service, id");
    let rows: Vec<InstanceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(ms(now)).fetch_all(pool).await?;
    readable(rows.into_iter().map(codec::instance))
}

pub async fn prune(pool: &PgPool, now: Time) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM instances WHERE expires_at <= $1").bind(ms(now)).execute(pool).await?.rows_affected())
}
