//! Writes held back until the transaction needs them: the rows of
//! operations, events and tasks that a policy function writes and reads no
//! more, sent as one statement (a data-modifying `WITH`) instead of one
//! round trip each.
//!
//! [`super::tx::PgTx`] sends them before any other statement of its
//! transaction (so whatever runs next sees them, as if each had run when
//! the policy asked) and before it commits. A statement is atomic: alone,
//! with no transaction open, it is its own transaction (an accept with no
//! key is that one statement).
//!
//! The sub-statements of one statement see the same snapshot, and none
//! sees what another writes: so an operation is written at most once in a
//! batch ([`Pending::touches`] tells the caller to send what is held
//! first), and nothing here reads.

use herald_core::{Event, Operation, OperationId, TaskKind, Time};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::{
    Result, TaskId,
    codec::{json, ms},
    tx::Lease,
};

/// The columns an operation's row is written with.
struct OpRow {
    id: String,
    status: &'static str,
    queued: bool,
    updated_at: i64,
    state: String,
    /// Set only when the row is new: they never change.
    new: Option<NewOp>,
}

struct NewOp {
    workflow: String,
    subject: Option<String>,
    concurrency_key: Option<String>,
}

impl OpRow {
    fn of(op: &Operation, new: bool) -> Result<Self> {
        Ok(OpRow {
            id: op.id.text().to_string(),
            status: op.status.as_str(),
            queued: op.is_queued(),
            updated_at: ms(op.updated_at),
            state: json(op)?,
            new: new.then(|| NewOp {
                workflow: op.workflow.clone(),
                subject: op.subject.clone(),
                concurrency_key: op.concurrency_key.clone(),
            }),
        })
    }
}

/// An event's row: operation, seq, body.
type EventRow = (String, i64, String);

/// A task's row: id, operation, kind, due, owner, lease's end.
type TaskRow = (i64, String, String, i64, Option<String>, Option<i64>);

#[derive(Default)]
pub struct Pending {
    ops: Vec<OpRow>,
    events: Vec<EventRow>,
    tasks: Vec<TaskRow>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.events.is_empty() && self.tasks.is_empty()
    }

    /// Whether a write of `op`'s row is held: another must wait for it.
    pub fn touches(&self, op: &OperationId) -> bool {
        let id = op.text();
        self.ops.iter().any(|o| o.id == *id)
    }

    pub fn insert_op(&mut self, op: &Operation) -> Result<()> {
        self.ops.push(OpRow::of(op, true)?);
        Ok(())
    }

    pub fn update_op(&mut self, op: &Operation) -> Result<()> {
        self.ops.push(OpRow::of(op, false)?);
        Ok(())
    }

    pub fn insert_events(&mut self, op: &OperationId, events: &[Event]) -> Result<()> {
        let id = op.text();
        for e in events {
            self.events.push((id.to_string(), e.seq as i64, json(e)?));
        }
        Ok(())
    }

    /// A task under an id taken from the table's sequence beforehand; it
    /// starts at epoch 0, as the table's default does.
    pub fn insert_task(
        &mut self,
        row: i64,
        op: &OperationId,
        kind: &TaskKind,
        due: Time,
        lease: Option<Lease<'_>>,
    ) -> Result<TaskId> {
        let owner = lease.map(|l| l.owner.to_string());
        self.tasks.push((row, op.text().to_string(), json(kind)?, ms(due), owner, lease.map(|l| ms(l.until))));
        Ok(TaskId { row, epoch: 0 })
    }

    /// Sends what is held, as one statement, and holds nothing after
    /// (whether it went or failed: a failure fails the transaction).
    pub async fn send(&mut self, c: &mut PgConnection) -> Result<()> {
        let Pending { ops, events, tasks } = std::mem::take(self);
        let mut parts: Vec<Part> = ops.into_iter().map(Part::Op).collect();
        if !events.is_empty() {
            parts.push(Part::Events(events));
        }
        if !tasks.is_empty() {
            parts.push(Part::Tasks(tasks));
        }
        let Some(last) = parts.pop() else { return Ok(()) };
        let mut q = QueryBuilder::<Postgres>::new("");
        for (i, part) in parts.into_iter().enumerate() {
            q.push(if i == 0 { "WITH " } else { ", " }).push(format_args!("w{i} AS ("));
            part.push(&mut q);
            q.push(")");
        }
        q.push(" ");
        last.push(&mut q);
        q.build().execute(c).await?;
        Ok(())
    }
}

/// One sub-statement.
enum Part {
    Op(OpRow),
    Events(Vec<EventRow>),
    Tasks(Vec<TaskRow>),
}

impl Part {
    fn push(self, q: &mut QueryBuilder<Postgres>) {
        match self {
            Part::Op(OpRow { id, status, queued, updated_at, state, new: Some(new) }) => {
                q.push(
                    "INSERT INTO operations (id, workflow, subject, status, concurrency_key, queued, updated_at, \
                     state) VALUES (",
                );
                let mut v = q.separated(", ");
                v.push_bind(id).push_bind(new.workflow).push_bind(new.subject).push_bind(status);
                v.push_bind(new.concurrency_key).push_bind(queued).push_bind(updated_at).push_bind(state);
                q.push(")");
            }
            Part::Op(OpRow { id, status, queued, updated_at, state, new: None }) => {
                q.push("UPDATE operations SET status = ").push_bind(status);
                q.push(", updated_at = ").push_bind(updated_at);
                q.push(", state = ").push_bind(state);
                q.push(", queued = ").push_bind(queued);
                q.push(" WHERE id = ").push_bind(id);
            }
            Part::Events(rows) => {
                let (mut ids, mut seqs, mut bodies) = (vec![], vec![], vec![]);
                for (id, seq, body) in rows {
                    ids.push(id);
                    seqs.push(seq);
                    bodies.push(body);
                }
                q.push("INSERT INTO events (op_id, seq, body) SELECT * FROM UNNEST(").push_bind(ids);
                q.push("::TEXT[], ").push_bind(seqs).push("::BIGINT[], ").push_bind(bodies).push("::TEXT[])");
            }
            Part::Tasks(rows) => {
                let mut cols = (vec![], vec![], vec![], vec![], vec![], vec![]);
                for (row, op, kind, due, owner, until) in rows {
                    cols.0.push(row);
                    cols.1.push(op);
                    cols.2.push(kind);
                    cols.3.push(due);
                    cols.4.push(owner);
                    cols.5.push(until);
                }
                q.push(
                    "INSERT INTO tasks (id, op_id, kind, due_at, owner, lease_until) OVERRIDING SYSTEM VALUE \
                     SELECT * FROM UNNEST(",
                );
                q.push_bind(cols.0).push("::BIGINT[], ").push_bind(cols.1).push("::TEXT[], ");
                q.push_bind(cols.2).push("::TEXT[], ").push_bind(cols.3).push("::BIGINT[], ");
                q.push_bind(cols.4).push("::TEXT[], ").push_bind(cols.5).push("::BIGINT[])");
            }
        }
    }
}
