//! The broker policy's [`TopicsTx`] on PostgreSQL: each call runs its
//! statements on the open transaction's connection ([`PgTx`]) and awaits
//! them. Why they cannot race another node is told in [`super::topics`]
//! and [`super::deliveries`].

use herald_core::{Time, retry::AttemptError};

use super::{deliveries, topics, tx::PgTx};
use crate::{
    Result,
    tx::{DeliveryRow, TopicsTx},
};

impl TopicsTx for PgTx<'_> {
    async fn subscription_spec(&mut self, name: &str) -> Result<Option<String>> {
        topics::spec(self.conn().await?, name).await
    }

    async fn upsert_subscription(&mut self, name: &str, topic: &str, spec: &str, now: Time) -> Result<()> {
        topics::upsert(self.conn().await?, name, topic, spec, now).await
    }

    async fn delete_subscription(&mut self, name: &str) -> Result<bool> {
        topics::delete(self.conn().await?, name).await
    }

    async fn delete_deliveries(&mut self, sub: &str) -> Result<()> {
        deliveries::delete_for(self.conn().await?, sub).await
    }

    async fn seen_event(&mut self, topic: &str, source: &str, id: &str, now: Time) -> Result<Option<i64>> {
        topics::seen(self.conn().await?, topic, source, id, now).await
    }

    async fn insert_event(&mut self, topic: &str, body: &str, now: Time) -> Result<i64> {
        topics::insert_event(self.conn().await?, topic, body, now).await
    }

    async fn remember_event(&mut self, topic: &str, source: &str, id: &str, seq: i64, expires: Time) -> Result<()> {
        topics::remember(self.conn().await?, topic, source, id, seq, expires).await
    }

    async fn lock_key(&mut self, sub: &str, key: &str) -> Result<()> {
        deliveries::lock_key(self.conn().await?, sub, key).await
    }

    async fn key_waiting(&mut self, sub: &str, key: &str) -> Result<bool> {
        deliveries::key_waiting(self.conn().await?, sub, key).await
    }

    async fn insert_delivery(&mut self, sub: &str, seq: i64, key: Option<&str>, ready: bool, due: Time) -> Result<()> {
        deliveries::insert(self.conn().await?, sub, seq, key, ready, due).await
    }

    async fn due_deliveries(&mut self, sub: &str, limit: usize, now: Time) -> Result<Vec<DeliveryRow>> {
        deliveries::due(self.conn().await?, sub, limit, now).await
    }

    async fn leased_delivery(&mut self, sub: &str, id: i64, token: i64) -> Result<Option<DeliveryRow>> {
        deliveries::leased(self.conn().await?, sub, id, token).await
    }

    async fn lease_delivery(
        &mut self,
        id: i64,
        token: i64,
        until: Time,
        errors: Option<&[AttemptError]>,
    ) -> Result<()> {
        deliveries::lease(self.conn().await?, id, token, until, errors).await
    }

    async fn release_delivery(&mut self, id: i64, due: Time, errors: Option<&[AttemptError]>) -> Result<()> {
        deliveries::release(self.conn().await?, id, due, errors).await
    }

    async fn delete_delivery(&mut self, id: i64) -> Result<()> {
        deliveries::delete(self.conn().await?, id).await
    }

    async fn ack_delivery(&mut self, sub: &str, id: i64, token: i64) -> Result<Option<Option<String>>> {
        deliveries::ack(self.conn().await?, sub, id, token).await
    }

    async fn next_of_key(&mut self, sub: &str, key: &str) -> Result<()> {
        deliveries::next_of_key(self.conn().await?, sub, key).await
    }

    async fn delivery_counts(&mut self, sub: &str, now: Time) -> Result<(u64, u64, Option<Time>)> {
        deliveries::counts(self.conn().await?, sub, now).await
    }

    async fn dead_letter_count(&mut self, sub: &str) -> Result<u64> {
        deliveries::dead_letters(self.conn().await?, sub).await
    }

    async fn next_due(&mut self, sub: &str) -> Result<Option<Time>> {
        deliveries::next_due(self.conn().await?, sub).await
    }

    async fn forget_event_ids(&mut self, now: Time, limit: usize) -> Result<usize> {
        topics::forget_ids(self.conn().await?, now, limit).await
    }

    async fn drop_unowed_events(&mut self, before: Time, limit: usize) -> Result<usize> {
        topics::drop_unowed(self.conn().await?, before, limit).await
    }
}
