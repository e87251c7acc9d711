//! Writes held back until the transaction needs them: the rows of
//! operations, events and tasks that a policy function writes and reads no
//! more, and the tasks it consumed, sent as one statement (a
//! data-modifying `WITH`, each part one array-bound statement however many
//! rows it has) instead of one round trip each.
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
//!
//! What is held can be cut back to a [`Mark`]: a batch of several callers'
//! writes in one transaction (`super::batch`) drops a refused caller's
//! rows that way, and sends the rows held before a caller's own apart from
//! the caller's.

use herald_core::{Event, Operation, OperationId, TaskKind, Time};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::{
    Result, TaskId,
    codec::{flags, json, ms},
    tx::Lease,
};

/// The columns an operation's row is written with.
struct OpRow {
    id: String,
    status: &'static str,
    queued: bool,
    updated_at: i64,
    state: String,
    flags: i16,
}

/// The columns written only when an operation's row is new: they never
/// change.
struct NewOp {
    row: OpRow,
    workflow: String,
    subject: Option<String>,
    concurrency_key: Option<String>,
}

impl OpRow {
    fn of(op: &Operation) -> Result<Self> {
        Ok(OpRow {
            id: op.id.text().to_string(),
            status: op.status.as_str(),
            queued: op.is_queued(),
            updated_at: ms(op.updated_at),
            state: json(op)?,
            flags: flags(op) as i16,
        })
    }
}

/// An event's row: operation, seq, body.
type EventRow = (String, i64, String);

/// A task's row: id, operation, kind, due, owner, lease's end.
type TaskRow = (i64, String, String, i64, Option<String>, Option<i64>);

#[derive(Default)]
pub struct Pending {
    inserts: Vec<NewOp>,
    updates: Vec<OpRow>,
    events: Vec<EventRow>,
    tasks: Vec<TaskRow>,
    /// Tasks consumed: deleted, their holder checked when they were read.
    consumed: Vec<i64>,
}

/// How much was held at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Mark([usize; 5]);

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.mark().0 == [0; 5]
    }

    pub fn mark(&self) -> Mark {
        Mark([self.inserts.len(), self.updates.len(), self.events.len(), self.tasks.len(), self.consumed.len()])
    }

    /// Drops what was held after `mark`.
    pub fn truncate(&mut self, mark: Mark) {
        let [a, b, c, d, e] = mark.0;
        self.inserts.truncate(a);
        self.updates.truncate(b);
        self.events.truncate(c);
        self.tasks.truncate(d);
        self.consumed.truncate(e);
    }

    /// What was held after `mark`, taken out; what was held before stays.
    pub fn split_off(&mut self, mark: Mark) -> Pending {
        let [a, b, c, d, e] = mark.0;
        Pending {
            inserts: self.inserts.split_off(a),
            updates: self.updates.split_off(b),
            events: self.events.split_off(c),
            tasks: self.tasks.split_off(d),
            consumed: self.consumed.split_off(e),
        }
    }

    /// Whether a write of `op`'s row is held: another must wait for it.
    pub fn touches(&self, op: &OperationId) -> bool {
        let id = op.text();
        self.inserts.iter().any(|o| o.row.id == *id) || self.updates.iter().any(|o| o.id == *id)
    }

    pub fn insert_op(&mut self, op: &Operation) -> Result<()> {
        self.inserts.push(NewOp {
            row: OpRow::of(op)?,
            workflow: op.workflow.clone(),
            subject: op.subject.clone(),
            concurrency_key: op.concurrency_key.clone(),
        });
        Ok(())
    }

    pub fn update_op(&mut self, op: &Operation) -> Result<()> {
        self.updates.push(OpRow::of(op)?);
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

    /// A task whose holder was checked (and its row locked) as it was read.
    pub fn consume_task(&mut self, row: i64) {
        self.consumed.push(row);
    }

    /// Sends what is held, as one statement, and holds nothing after
    /// (whether it went or failed: a failure fails the transaction).
    pub async fn send(&mut self, c: &mut PgConnection) -> Result<()> {
        let Pending { inserts, updates, events, tasks, consumed } = std::mem::take(self);
        let mut parts: Vec<Part> = Vec::with_capacity(5);
        if !inserts.is_empty() {
            parts.push(Part::Inserts(inserts));
        }
        if !updates.is_empty() {
            parts.push(Part::Updates(updates));
        }
        if !events.is_empty() {
            parts.push(Part::Events(events));
        }
        if !tasks.is_empty() {
            parts.push(Part::Tasks(tasks));
        }
        if !consumed.is_empty() {
            parts.push(Part::Consumed(consumed));
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

/// One sub-statement: its text depends only on its kind, so the few
/// statements a transaction sends are prepared once per connection.
enum Part {
    Inserts(Vec<NewOp>),
    Updates(Vec<OpRow>),
    Events(Vec<EventRow>),
    Tasks(Vec<TaskRow>),
    Consumed(Vec<i64>),
}

impl Part {
    fn push(self, q: &mut QueryBuilder<Postgres>) {
        match self {
            Part::Inserts(rows) => {
                let mut c = (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
                for NewOp { row, workflow, subject, concurrency_key } in rows {
                    c.0.push(row.id);
                    c.1.push(workflow);
                    c.2.push(subject);
                    c.3.push(row.status);
                    c.4.push(concurrency_key);
                    c.5.push(row.queued);
                    c.6.push(row.updated_at);
                    c.7.push(row.state);
                    c.8.push(row.flags);
                }
                q.push(
                    "INSERT INTO operations (id, workflow, subject, status, concurrency_key, queued, updated_at, \
                     state, flags) SELECT * FROM UNNEST(",
                );
                q.push_bind(c.0).push("::TEXT[], ").push_bind(c.1).push("::TEXT[], ");
                q.push_bind(c.2).push("::TEXT[], ").push_bind(c.3).push("::TEXT[], ");
                q.push_bind(c.4).push("::TEXT[], ").push_bind(c.5).push("::BOOLEAN[], ");
                q.push_bind(c.6).push("::BIGINT[], ").push_bind(c.7).push("::TEXT[], ");
                q.push_bind(c.8).push("::SMALLINT[])");
            }
            Part::Updates(rows) => {
                let mut c = (vec![], vec![], vec![], vec![], vec![], vec![]);
                for OpRow { id, status, queued, updated_at, state, flags } in rows {
                    c.0.push(id);
                    c.1.push(status);
                    c.2.push(queued);
                    c.3.push(updated_at);
                    c.4.push(state);
                    c.5.push(flags);
                }
                q.push(
                    "UPDATE operations o SET status = v.status, queued = v.queued, updated_at = v.updated_at, \
                     state = v.state, flags = v.flags FROM UNNEST(",
                );
                q.push_bind(c.0).push("::TEXT[], ").push_bind(c.1).push("::TEXT[], ");
                q.push_bind(c.2).push("::BOOLEAN[], ").push_bind(c.3).push("::BIGINT[], ");
                q.push_bind(c.4).push("::TEXT[], ").push_bind(c.5).push("::SMALLINT[]) ");
                q.push("AS v (id, status, queued, updated_at, state, flags) WHERE o.id = v.id");
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
            Part::Consumed(rows) => {
                q.push("DELETE FROM tasks WHERE id = ANY(").push_bind(rows).push("::BIGINT[])");
            }
        }
    }
}
