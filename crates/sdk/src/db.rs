//! The outbox's and inbox's tables on the service's own database, SQLite
//! or PostgreSQL through sqlx. The SQL is the same for both but for the
//! tables' definitions and the relay's lock; one macro writes both
//! backends so they cannot drift apart.

use std::future::Future;

/// Rows the relay publishes: (seq, topic, event JSON).
pub type Pending = Vec<(i64, String, String)>;

/// A connection of the service's database (usually inside its own
/// transaction: `&mut *tx`) that the outbox and inbox can write on.
pub trait Conn: Send {
    #[doc(hidden)]
    fn insert_outbox(&mut self, topic: &str, event: &str, at: i64) -> impl Future<Output = sqlx::Result<()>> + Send;
    #[doc(hidden)]
    fn claim_inbox(
        &mut self,
        key: &str,
        at: i64,
    ) -> impl Future<Output = sqlx::Result<Option<(Option<i64>, Option<String>)>>> + Send;
    #[doc(hidden)]
    fn answer_inbox(&mut self, key: &str, status: i64, answer: &str) -> impl Future<Output = sqlx::Result<()>> + Send;
}

/// A pool of the service's database, for creating the tables and for the relay.
pub trait Pool: Clone + Send + Sync + 'static {
    /// Creates herald's tables if they are not there.
    fn create_tables(&self) -> impl Future<Output = sqlx::Result<()>> + Send;
    /// Runs `pass` as the only relay of this database at the moment (or not
    /// at all, answering 0, when another relay holds the turn).
    fn exclusive<F, Fut>(&self, pass: F) -> impl Future<Output = crate::Result<usize>> + Send
    where
        F: FnOnce(Self) -> Fut + Send,
        Fut: Future<Output = crate::Result<usize>> + Send;
    fn pending(&self, limit: i64) -> impl Future<Output = sqlx::Result<Pending>> + Send;
    fn mark_sent(&self, seqs: &[i64], at: i64) -> impl Future<Output = sqlx::Result<()>> + Send;
    /// Forgets rows sent before `before`.
    fn prune(&self, before: i64) -> impl Future<Output = sqlx::Result<u64>> + Send;
}

const INSERT_OUTBOX: &str = "INSERT INTO herald_outbox (topic, event, created_at) VALUES ($1, $2, $3)";
const CLAIM_INBOX: &str = "INSERT INTO herald_inbox (key, received_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
const READ_INBOX: &str = "SELECT status, answer FROM herald_inbox WHERE key = $1";
const ANSWER_INBOX: &str = "UPDATE herald_inbox SET status = $2, answer = $3 WHERE key = $1";
const PENDING: &str = "SELECT seq, topic, event FROM herald_outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1";
const PRUNE: &str = "DELETE FROM herald_outbox WHERE sent_at IS NOT NULL AND sent_at < $1";

const SQLITE_TABLES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS herald_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, event TEXT NOT NULL,
        created_at INTEGER NOT NULL, sent_at INTEGER)",
    "CREATE TABLE IF NOT EXISTS herald_inbox (
        key TEXT PRIMARY KEY, received_at INTEGER NOT NULL, status INTEGER, answer TEXT)",
];

const POSTGRES_TABLES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS herald_outbox (
        seq BIGSERIAL PRIMARY KEY, topic TEXT NOT NULL, event TEXT NOT NULL,
        created_at BIGINT NOT NULL, sent_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS herald_inbox (
        key TEXT PRIMARY KEY, received_at BIGINT NOT NULL, status BIGINT, answer TEXT)",
];

/// The advisory lock that makes one relay at a time publish a PostgreSQL
/// outbox, so rows go out in order even with several replicas running.
const PG_RELAY_LOCK: i64 = 0x6865_7261_6c64; // "herald"

macro_rules! backend {
    ($kind:ident, $conn:ty, $pool:ty, $tables:expr, $db:ty) => {
        impl Conn for $conn {
            async fn insert_outbox(&mut self, topic: &str, event: &str, at: i64) -> sqlx::Result<()> {
                sqlx::query(INSERT_OUTBOX).bind(topic).bind(event).bind(at).execute(&mut *self).await.map(drop)
            }

            async fn claim_inbox(&mut self, key: &str, at: i64) -> sqlx::Result<Option<(Option<i64>, Option<String>)>> {
                sqlx::query(CLAIM_INBOX).bind(key).bind(at).execute(&mut *self).await?;
                sqlx::query_as::<$db, (Option<i64>, Option<String>)>(READ_INBOX)
                    .bind(key)
                    .fetch_optional(&mut *self)
                    .await
            }

            async fn answer_inbox(&mut self, key: &str, status: i64, answer: &str) -> sqlx::Result<()> {
                sqlx::query(ANSWER_INBOX).bind(key).bind(status).bind(answer).execute(&mut *self).await.map(drop)
            }
        }

        impl Pool for $pool {
            async fn create_tables(&self) -> sqlx::Result<()> {
                for sql in $tables {
                    sqlx::query(sql).execute(self).await?;
                }
                Ok(())
            }

            async fn exclusive<F, Fut>(&self, pass: F) -> crate::Result<usize>
            where
                F: FnOnce(Self) -> Fut + Send,
                Fut: std::future::Future<Output = crate::Result<usize>> + Send,
            {
                backend!(@exclusive $kind, self, pass)
            }

            async fn pending(&self, limit: i64) -> sqlx::Result<Pending> {
                sqlx::query_as::<$db, (i64, String, String)>(PENDING).bind(limit).fetch_all(self).await
            }

            async fn mark_sent(&self, seqs: &[i64], at: i64) -> sqlx::Result<()> {
                // One statement per row keeps the SQL the same on both
                // databases; a relay marks at most a batch at a time.
                let mut tx = self.begin().await?;
                for seq in seqs {
                    sqlx::query("UPDATE herald_outbox SET sent_at = $2 WHERE seq = $1")
                        .bind(seq)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }

            async fn prune(&self, before: i64) -> sqlx::Result<u64> {
                Ok(sqlx::query(PRUNE).bind(before).execute(self).await?.rows_affected())
            }
        }
    };
    (@exclusive sqlite, $pool:expr, $pass:expr) => {
        // A SQLite database belongs to one service process: its relay is alone.
        $pass($pool.clone()).await
    };
    (@exclusive postgres, $pool:expr, $pass:expr) => {{
        let mut lock = $pool.acquire().await?;
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(PG_RELAY_LOCK).fetch_one(&mut *lock).await?;
        if !mine {
            return Ok(0);
        }
        let out = $pass($pool.clone()).await;
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_RELAY_LOCK).execute(&mut *lock).await?;
        out
    }};
}

backend!(sqlite, sqlx::SqliteConnection, sqlx::SqlitePool, SQLITE_TABLES, sqlx::Sqlite);
backend!(postgres, sqlx::PgConnection, sqlx::PgPool, POSTGRES_TABLES, sqlx::Postgres);
