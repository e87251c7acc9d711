//! The broker policy's [`TopicsTx`] on SQLite: like [`super::tx`], each
//! call runs its statement on the writer's connection before it returns.
//! There is one writer, so a key needs no lock.

use std::future::ready;

use herald_core::{Time, retry::AttemptError};

use super::{
    dead, deliveries, topics,
    tx::{Done, Rows},
};
use crate::tx::{DeliveryRow, TopicsTx};

#[allow(refining_impl_trait)]
impl TopicsTx for Rows<'_> {
    fn subscription_spec(&mut self, name: &str) -> Done<Option<String>> {
        ready(topics::spec(self.0, name))
    }

    fn upsert_subscription(&mut self, name: &str, topic: &str, spec: &str, now: Time) -> Done<()> {
        ready(topics::upsert(self.0, name, topic, spec, now))
    }

    fn delete_subscription(&mut self, name: &str) -> Done<bool> {
        ready(topics::delete(self.0, name))
    }

    fn delete_deliveries(&mut self, sub: &str) -> Done<()> {
        ready(deliveries::delete_for(self.0, sub))
    }

    fn seen_event(&mut self, topic: &str, source: &str, id: &str, now: Time) -> Done<Option<i64>> {
        ready(topics::seen(self.0, topic, source, id, now))
    }

    fn insert_event(&mut self, topic: &str, body: &str, now: Time) -> Done<i64> {
        ready(topics::insert_event(self.0, topic, body, now))
    }

    fn remember_event(&mut self, topic: &str, source: &str, id: &str, seq: i64, expires: Time) -> Done<()> {
        ready(topics::remember(self.0, topic, source, id, seq, expires))
    }

    fn lock_key(&mut self, _: &str, _: &str) -> Done<()> {
        ready(Ok(()))
    }

    fn key_waiting(&mut self, sub: &str, key: &str) -> Done<bool> {
        ready(deliveries::key_waiting(self.0, sub, key))
    }

    fn insert_delivery(&mut self, sub: &str, seq: i64, key: Option<&str>, is_ready: bool, due: Time) -> Done<()> {
        ready(deliveries::insert(self.0, sub, seq, key, is_ready, due))
    }

    fn due_deliveries(&mut self, sub: &str, limit: usize, now: Time) -> Done<Vec<DeliveryRow>> {
        ready(deliveries::due(self.0, sub, limit, now))
    }

    fn leased_delivery(&mut self, sub: &str, id: i64, token: i64) -> Done<Option<DeliveryRow>> {
        ready(deliveries::leased(self.0, sub, id, token))
    }

    fn lease_delivery(&mut self, id: i64, token: i64, until: Time, errors: Option<&[AttemptError]>) -> Done<()> {
        ready(deliveries::lease(self.0, id, token, until, errors))
    }

    fn release_delivery(&mut self, id: i64, due: Time, errors: Option<&[AttemptError]>) -> Done<()> {
        ready(deliveries::release(self.0, id, due, errors))
    }

    fn delete_delivery(&mut self, id: i64) -> Done<()> {
        ready(deliveries::delete(self.0, id))
    }

    fn ack_delivery(&mut self, sub: &str, id: i64, token: i64) -> Done<Option<Option<String>>> {
        ready(deliveries::ack(self.0, sub, id, token))
    }

    fn next_of_key(&mut self, sub: &str, key: &str) -> Done<()> {
        ready(deliveries::next_of_key(self.0, sub, key))
    }

    fn delivery_counts(&mut self, sub: &str, now: Time) -> Done<(u64, u64, Option<Time>)> {
        ready(deliveries::counts(self.0, sub, now))
    }

    fn dead_letter_count(&mut self, sub: &str) -> Done<u64> {
        ready(dead::count_for_subscription(self.0, sub))
    }

    fn next_due(&mut self, sub: &str) -> Done<Option<Time>> {
        ready(deliveries::next_due(self.0, sub))
    }

    fn forget_event_ids(&mut self, now: Time, limit: usize) -> Done<usize> {
        ready(topics::forget_ids(self.0, now, limit))
    }

    fn drop_unowed_events(&mut self, before: Time, limit: usize) -> Done<usize> {
        ready(topics::drop_unowed(self.0, before, limit))
    }
}
