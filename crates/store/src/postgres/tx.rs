//! The policy's [`Tx`] on PostgreSQL: each call runs its statements on the
//! connection of one open transaction and awaits them. The store begins
//! the transaction, runs a policy function over this, and commits on `Ok`
//! or rolls back on `Err` ([`super::PgStore`]).
//!
//! The transaction is READ COMMITTED; what the policy reads and then
//! writes is kept from racing another node by locks taken as it reads: an
//! operation it loads is locked (`FOR UPDATE`), a concurrency key's
//! holders are read under an advisory lock, an inbox's counter row is
//! locked by its increment, and an idempotency key is a primary key.

use herald_core::{Event, Operation, OperationId, TaskKind, Time, concurrency::Active, notify::Notification};
use sqlx::PgConnection;

use super::{instances, read, rows, tasks};
use crate::{
    DeadLetter, DeadLetterKind, IdempotencyKey, RegisteredInstance, Result, TaskId,
    tx::{Lease, Tx},
};

/// The connection of one open write transaction.
pub struct PgTx<'c>(pub &'c mut PgConnection);

impl Tx for PgTx<'_> {
    async fn load(&mut self, id: &OperationId) -> Result<Option<Operation>> {
        rows::load(self.0, id).await
    }

    async fn insert_op(&mut self, op: &Operation) -> Result<()> {
        rows::insert_op(self.0, op).await
    }

    async fn update_op(&mut self, op: &Operation) -> Result<()> {
        rows::update_op(self.0, op).await
    }

    async fn active_with_key(&mut self, workflow: &str, key: &str) -> Result<Vec<Active>> {
        rows::active_with_key(self.0, workflow, key).await
    }

    async fn idempotency(&mut self, workflow: &str, key: &str) -> Result<Option<(OperationId, String)>> {
        rows::idempotency(self.0, workflow, key).await
    }

    async fn insert_idempotency(
        &mut self,
        workflow: &str,
        key: &IdempotencyKey,
        op: &OperationId,
        at: Time,
    ) -> Result<()> {
        rows::insert_idempotency(self.0, workflow, key, op, at).await
    }

    async fn insert_events(&mut self, op: &OperationId, events: &[Event]) -> Result<()> {
        rows::insert_events(self.0, op, events).await
    }

    async fn events(&mut self, op: &OperationId, after: u64, limit: usize) -> Result<Vec<Event>> {
        read::events(self.0, op, after, limit).await
    }

    async fn insert_task(
        &mut self,
        op: &OperationId,
        kind: &TaskKind,
        due: Time,
        lease: Option<Lease<'_>>,
    ) -> Result<TaskId> {
        tasks::insert(self.0, op, kind, due, lease).await
    }

    async fn delete_task(&mut self, id: TaskId, owner: &str) -> Result<bool> {
        tasks::delete(self.0, id, owner).await
    }

    async fn next_version(&mut self, subject: &str) -> Result<u64> {
        rows::next_version(self.0, subject).await
    }

    async fn upsert_notification(&mut self, subject: &str, n: &Notification) -> Result<()> {
        rows::upsert_notification(self.0, subject, n).await
    }

    async fn unread(&mut self, subject: &str) -> Result<u64> {
        read::unread(self.0, subject).await
    }

    async fn unread_ids(&mut self, subject: &str, only: Option<&str>) -> Result<Vec<String>> {
        rows::unread_ids(self.0, subject, only).await
    }

    async fn mark_notification_read(&mut self, id: &str, version: u64) -> Result<Option<Notification>> {
        rows::mark_read(self.0, id, version).await
    }

    async fn insert_dead_letter(&mut self, letter: &DeadLetter) -> Result<i64> {
        rows::insert_dead_letter(self.0, letter).await
    }

    async fn delete_dead_letter(&mut self, id: i64) -> Result<bool> {
        rows::delete_dead_letter(self.0, id).await
    }

    async fn delete_step_dead_letters(&mut self, op: &OperationId, step: &str, kind: DeadLetterKind) -> Result<()> {
        rows::delete_step_dead_letters(self.0, op, step, kind).await
    }

    async fn instance(&mut self, service: &str, id: &str) -> Result<Option<RegisteredInstance>> {
        instances::get(self.0, service, id).await
    }

    async fn upsert_instance(&mut self, instance: &RegisteredInstance) -> Result<()> {
        instances::upsert(self.0, instance).await
    }
}
