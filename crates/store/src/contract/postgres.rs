//! A PostgreSQL schema of a test's own, for the backend's contract run and
//! for any test that runs herald on PostgreSQL; dropped with it.
//!
//! The server is `HERALD_TEST_POSTGRES` (by default
//! `postgres://postgres@127.0.0.1:5432/test`). Without one, a test fails
//! saying what to start: it never passes by skipping.

use std::{str::FromStr, sync::Arc};

use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{Node, postgres::PgStore};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct TestSchema {
    url: String,
    base: PgConnectOptions,
    pub name: String,
}

impl TestSchema {
    /// A new, empty schema in the test database.
    pub async fn new() -> Self {
        let url = std::env::var("HERALD_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.into());
        let base = PgConnectOptions::from_str(&url).expect("HERALD_TEST_POSTGRES is a postgres:// URL");
        let mut admin = base.connect().await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {url} ({e}). These tests need it: start PostgreSQL (15 or later) \
                 there with trust auth for user `postgres` and a database `test`, or point HERALD_TEST_POSTGRES \
                 at one that runs."
            )
        });
        let name = format!("herald_test_{:016x}", rand::random::<u64>());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
        TestSchema { url, base, name }
    }

    /// Connections whose tables are this schema's.
    pub fn options(&self) -> PgConnectOptions {
        self.base.clone().options([("search_path", self.name.as_str())])
    }

    /// A store URL whose tables are this schema's, for `herald_store::open`.
    pub fn url(&self) -> String {
        crate::postgres::in_schema(&self.url, &self.name)
    }

    /// A store on this schema as `node`, on a small pool of its own.
    pub async fn store(&self, node: Node) -> Arc<PgStore> {
        let pool = PgPoolOptions::new().max_connections(4).connect_with(self.options()).await.unwrap();
        Arc::new(PgStore::on(pool, node).await.unwrap())
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop cannot await: the schema goes from a thread of its own. A
        // store on it may still be open, its transactions waiting on the
        // runtime this drop blocks: the connections holding a lock in the
        // schema are ended first, or the drop would wait on them forever.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let mut c = base.connect().await?;
                sqlx::raw_sql("SET lock_timeout = '2s'").execute(&mut c).await?;
                let mut tries = 0;
                loop {
                    sqlx::query(
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l
                         JOIN pg_class r ON r.oid = l.relation JOIN pg_namespace n ON n.oid = r.relnamespace
                         WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()
                           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    )
                    .bind(&name)
                    .execute(&mut c)
                    .await?;
                    tries += 1;
                    match sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).execute(&mut c).await {
                        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") && tries < 5 => continue,
                        other => other?,
                    };
                    break;
                }
                c.close().await
            })
            .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("the test schema {} was not dropped: {dropped:?}", self.name);
        }
    }
}
