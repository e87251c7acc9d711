//! The policy's [`Tx`] on SQLite: each call runs its statement on the
//! writer's connection, inside the job's savepoint, before it returns.
//!
//! So every future handed back is already complete, and a policy future
//! over them finishes at its first poll: [`now`] polls it once, on the
//! writer thread, with no executor. (An async backend awaits the same
//! policy for real.)

use std::{
    future::{Future, Ready, ready},
    pin::pin,
    task::{Context, Poll, Waker},
};

use herald_core::{Event, Operation, OperationId, TaskKind, Time, concurrency::Active, notify::Notification};
use rusqlite::Connection;

use super::{dead, instances, read, rows};
use crate::{
    DeadLetter, DeadLetterKind, Error, IdempotencyKey, RegisteredInstance, Result, TaskId,
    tx::{Lease, Tx},
};

/// The writer's connection, inside one job's savepoint.
pub struct Rows<'c>(pub &'c Connection);

/// Runs a policy future over [`Rows`] to its end.
pub fn now<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        // Never: no `Rows` call waits. Failing rolls the job back.
        Poll::Pending => Err(Error::Internal("a SQLite write waited on something".into())),
    }
}

pub(super) type Done<T> = Ready<Result<T>>;

// Each method names its ready future: it says these never wait.
#[allow(refining_impl_trait)]
impl Tx for Rows<'_> {
    fn load(&mut self, id: &OperationId) -> Done<Option<Operation>> {
        ready(read::get(self.0, id))
    }

    fn load_consuming(&mut self, id: &OperationId, consume: Option<(TaskId, &str)>) -> Done<Option<(Operation, bool)>> {
        let loaded = read::get(self.0, id).and_then(|op| {
            let Some(op) = op else { return Ok(None) };
            let held = match consume {
                Some((task, owner)) => rows::delete_task(self.0, task, owner)?,
                None => true,
            };
            Ok(Some((op, held)))
        });
        ready(loaded)
    }

    fn insert_op(&mut self, op: &Operation) -> Done<()> {
        ready(rows::insert_op(self.0, op))
    }

    fn update_op(&mut self, op: &Operation) -> Done<()> {
        ready(rows::update_op(self.0, op))
    }

    fn active_with_key(&mut self, workflow: &str, key: &str) -> Done<Vec<Active>> {
        ready(rows::active_with_key(self.0, workflow, key))
    }

    fn idempotency(&mut self, workflow: &str, key: &str) -> Done<Option<(OperationId, String)>> {
        ready(rows::idempotency(self.0, workflow, key))
    }

    fn insert_idempotency(&mut self, workflow: &str, key: &IdempotencyKey, op: &OperationId, at: Time) -> Done<()> {
        ready(rows::insert_idempotency(self.0, workflow, key, op, at))
    }

    fn insert_events(&mut self, op: &OperationId, events: &[Event]) -> Done<()> {
        ready(rows::insert_events(self.0, op, events))
    }

    fn events(&mut self, op: &OperationId, after: u64, limit: usize) -> Done<Vec<Event>> {
        ready(read::events(self.0, op, after, limit))
    }

    fn insert_task(&mut self, op: &OperationId, kind: &TaskKind, due: Time, lease: Option<Lease<'_>>) -> Done<TaskId> {
        ready(rows::insert_task(self.0, op, kind, due, lease))
    }

    fn delete_task(&mut self, id: TaskId, owner: &str) -> Done<bool> {
        ready(rows::delete_task(self.0, id, owner))
    }

    fn next_version(&mut self, subject: &str) -> Done<u64> {
        ready(rows::next_version(self.0, subject))
    }

    fn upsert_notification(&mut self, subject: &str, n: &Notification) -> Done<()> {
        ready(rows::upsert_notification(self.0, subject, n))
    }

    fn unread(&mut self, subject: &str) -> Done<u64> {
        ready(rows::unread(self.0, subject))
    }

    fn unread_ids(&mut self, subject: &str, only: Option<&str>) -> Done<Vec<String>> {
        ready(rows::unread_ids(self.0, subject, only))
    }

    fn mark_notification_read(&mut self, id: &str, version: u64) -> Done<Option<Notification>> {
        ready(rows::mark_read(self.0, id, version))
    }

    fn insert_dead_letter(&mut self, letter: &DeadLetter) -> Done<i64> {
        ready(dead::insert(self.0, letter))
    }

    fn delete_dead_letter(&mut self, id: i64) -> Done<bool> {
        ready(dead::delete(self.0, id))
    }

    fn delete_step_dead_letters(&mut self, op: &OperationId, step: &str, kind: DeadLetterKind) -> Done<()> {
        ready(dead::delete_for_step(self.0, op, step, kind))
    }

    fn instance(&mut self, service: &str, id: &str) -> Done<Option<RegisteredInstance>> {
        ready(instances::get(self.0, service, id))
    }

    fn upsert_instance(&mut self, instance: &RegisteredInstance) -> Done<()> {
        ready(instances::upsert(self.0, instance))
    }
}
