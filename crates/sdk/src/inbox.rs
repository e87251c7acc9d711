//! The inbox: a table of the keys a service has handled, with the answer
//! it gave, written in the same transaction as the work. A repeated step
//! call (same `Idempotency-Key`) or a redelivered event then gets the same
//! answer, and the work is done once however often it arrives.
//!
//! ```no_run
//! # async fn run(pool: sqlx::SqlitePool, call: herald_sdk::step::StepCall) -> herald_sdk::Result<herald_sdk::step::StepReply> {
//! use herald_sdk::{Inbox, step::StepReply};
//! let mut tx = pool.begin().await?;
//! if let Some(answer) = Inbox::claim(&mut *tx, &call.key).await? {
//!     return Ok(answer); // done before: the same answer again
//! }
//! sqlx::query("DELETE FROM logs WHERE user_id = $1").bind(&call.envelope.operation_id).execute(&mut *tx).await?;
//! let reply = StepReply::done(serde_json::json!({"deleted": true}));
//! Inbox::keep(&mut *tx, &call.key, &reply).await?;
//! tx.commit().await?;
//! Ok(reply)
//! # }
//! ```

use crate::{Result, db::Conn, step::StepReply};

pub struct Inbox;

impl Inbox {
    /// The answer kept for `key`, if it was handled (and committed) before;
    /// otherwise `None`, and the key is this transaction's to handle. A
    /// second transaction claiming the same key waits for this one.
    pub async fn claim(conn: &mut impl Conn, key: &str) -> Result<Option<StepReply>> {
        let now = chrono::Utc::now().timestamp_millis();
        Ok(match conn.claim_inbox(key, now).await? {
            Some((Some(status), Some(answer))) => {
                let body = serde_json::from_str(&answer).map_err(|e| crate::Error::Decode(e.to_string()))?;
                Some(StepReply::replay(status as u16, body))
            }
            _ => None,
        })
    }

    /// Keeps the answer with the key, in the transaction that did the work.
    /// An answer that asks herald to try again is not final, so it is not kept.
    pub async fn keep(conn: &mut impl Conn, key: &str, reply: &StepReply) -> Result<()> {
        if !reply.is_final() {
            return Ok(());
        }
        let (status, body) = reply.parts();
        Ok(conn.answer_inbox(key, i64::from(status.as_u16()), &body.to_string()).await?)
    }
}
