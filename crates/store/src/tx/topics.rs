//! What a broker backend does inside one transaction: the rows of topics,
//! subscriptions and deliveries, and nothing decided. [`crate::policy::broker`]
//! decides (dedupe, fan-out, per-key order, leases, retries, burial) over
//! these methods, once for every backend.
//!
//! A dead letter is written through [`Tx::insert_dead_letter`], so the
//! broker's trait extends the store's.

use std::future::Future;

use herald_core::{Time, retry::AttemptError};

use super::Tx;
use crate::Result;

/// A delivery as the policy reads it: the row and its event.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub seq: i64,
    pub key: Option<String>,
    pub attempts: u32,
    /// Out with a consumer (or was, if its lease ran out).
    pub leased: bool,
    pub errors: Vec<AttemptError>,
    /// The event as published (JSON).
    pub body: String,
    pub published_at: Time,
}

pub trait TopicsTx: Tx {
    // Subscriptions.

    /// A subscription's stored definition (JSON), if it exists.
    fn subscription_spec(&mut self, name: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    fn upsert_subscription(
        &mut self,
        name: &str,
        topic: &str,
        spec: &str,
        now: Time,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Whether it existed.
    fn delete_subscription(&mut self, name: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Every delivery a subscription still owes.
    fn delete_deliveries(&mut self, sub: &str) -> impl Future<Output = Result<()>> + Send;

    // Publishing.

    /// The place of an event with this source and id published to the
    /// topic and remembered past `now`. A backend shared by several
    /// writers keeps another writer's publish of the same id from passing
    /// between this read and [`Self::remember_event`].
    fn seen_event(
        &mut self,
        topic: &str,
        source: &str,
        id: &str,
        now: Time,
    ) -> impl Future<Output = Result<Option<i64>>> + Send;

    /// Appends an event (JSON) to a topic; its place.
    fn insert_event(&mut self, topic: &str, body: &str, now: Time) -> impl Future<Output = Result<i64>> + Send;

    /// Remembers an event's source and id until `expires`.
    fn remember_event(
        &mut self,
        topic: &str,
        source: &str,
        id: &str,
        seq: i64,
        expires: Time,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Holds one ordering key of a subscription until the transaction
    /// ends, so that whether its first row is `ready` is decided by one
    /// writer at a time. A single writer needs nothing here.
    fn lock_key(&mut self, sub: &str, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Whether the subscription still owes an event of this key.
    fn key_waiting(&mut self, sub: &str, key: &str) -> impl Future<Output = Result<bool>> + Send;

    fn insert_delivery(
        &mut self,
        sub: &str,
        seq: i64,
        key: Option<&str>,
        ready: bool,
        due: Time,
    ) -> impl Future<Output = Result<()>> + Send;

    // Deliveries.

    /// Up to `limit` ready rows due by `now`, earliest first; each is this
    /// transaction's alone until it ends (other writers skip it).
    fn due_deliveries(
        &mut self,
        sub: &str,
        limit: usize,
        now: Time,
    ) -> impl Future<Output = Result<Vec<DeliveryRow>>> + Send;

    /// The row leased with `token`, if that lease still stands; held to the
    /// end of the transaction.
    fn leased_delivery(
        &mut self,
        sub: &str,
        id: i64,
        token: i64,
    ) -> impl Future<Output = Result<Option<DeliveryRow>>> + Send;

    /// Leases a row with `token` until `until`, counting one more attempt;
    /// `errors`, when given, replace its history.
    fn lease_delivery(
        &mut self,
        id: i64,
        token: i64,
        until: Time,
        errors: Option<&[AttemptError]>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Ends a row's lease: it is due again at `due`. With `errors`, the
    /// attempt counts and they are its history; without, the attempt is
    /// taken back (it never reached the consumer).
    fn release_delivery(
        &mut self,
        id: i64,
        due: Time,
        errors: Option<&[AttemptError]>,
    ) -> impl Future<Output = Result<()>> + Send;

    fn delete_delivery(&mut self, id: i64) -> impl Future<Output = Result<()>> + Send;

    /// Deletes the row if `token` still leases it; its key, if it did.
    fn ack_delivery(
        &mut self,
        sub: &str,
        id: i64,
        token: i64,
    ) -> impl Future<Output = Result<Option<Option<String>>>> + Send;

    /// Makes the oldest row of the key ready.
    fn next_of_key(&mut self, sub: &str, key: &str) -> impl Future<Output = Result<()>> + Send;

    // Reads and housekeeping.

    /// Rows owed, rows out under a lease ending after `now`, and the
    /// oldest owed event's publish time.
    fn delivery_counts(
        &mut self,
        sub: &str,
        now: Time,
    ) -> impl Future<Output = Result<(u64, u64, Option<Time>)>> + Send;

    fn dead_letter_count(&mut self, sub: &str) -> impl Future<Output = Result<u64>> + Send;

    /// The earliest due time of a ready row.
    fn next_due(&mut self, sub: &str) -> impl Future<Output = Result<Option<Time>>> + Send;

    /// Forgets up to `limit` event ids remembered until `now` or before.
    fn forget_event_ids(&mut self, now: Time, limit: usize) -> impl Future<Output = Result<usize>> + Send;

    /// Drops up to `limit` events published before `before` that no
    /// subscription owes.
    fn drop_unowed_events(&mut self, before: Time, limit: usize) -> impl Future<Output = Result<usize>> + Send;
}
