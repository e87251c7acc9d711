//! Exchanges and queues: the prefix's own (declared at connect), and each
//! subscription's (declared by a put, deleted by a delete).
//!
//! A subscription's queues are quorum queues: replicated, durable. The
//! keyed ones have a single active consumer (one herald process at a
//! time), which with a prefetch of one keeps a partition's events going
//! out one at a time in order. Every one has a delivery limit: a message
//! returned that often (its holders' channels closed, say because the
//! herald processes died holding it) goes through the dead-letter
//! exchange to `{prefix}.dead`, at least once, from where herald moves it
//! to its dead letters.

use herald_broker::Subscription;
use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};

use crate::{
    names::{Names, Part},
    storage,
};

type BResult<T> = herald_broker::Result<T>;

/// Deliveries of one message before the server dead-letters it. herald
/// counts each return as an attempt and buries a message out of attempts
/// itself, so this is a backstop for messages that crash every process
/// that takes them; fixed, since a queue's arguments cannot change.
pub const DELIVERY_LIMIT: i64 = 20;

fn durable() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions { durable: true, ..Default::default() }
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    args
}

/// The prefix's exchanges and dead-letter queue.
pub async fn declare_base(ch: &Channel, names: &Names) -> BResult<()> {
    ch.exchange_declare(&names.topics_exchange(), ExchangeKind::Topic, durable(), FieldTable::default())
        .await
        .map_err(storage)?;
    ch.exchange_declare(&names.dlx(), ExchangeKind::Fanout, durable(), FieldTable::default()).await.map_err(storage)?;
    ch.exchange_declare(&names.wake_exchange(), ExchangeKind::Fanout, durable(), FieldTable::default())
        .await
        .map_err(storage)?;
    let dead = names.dead_queue();
    ch.queue_declare(&dead, QueueDeclareOptions { durable: true, ..Default::default() }, quorum())
        .await
        .map_err(storage)?;
    ch.queue_bind(&dead, &names.dlx(), "", QueueBindOptions::default(), FieldTable::default())
        .await
        .map_err(storage)?;
    Ok(())
}

pub fn queue_arguments(names: &Names, part: Part) -> FieldTable {
    let mut args = quorum();
    args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(DELIVERY_LIMIT));
    args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(names.dlx().into()));
    // Dead-lettered at least once (the default drops a message the dead
    // queue does not confirm); this strategy needs `reject-publish`.
    args.insert("x-dead-letter-strategy".into(), AMQPValue::LongString("at-least-once".into()));
    args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
    if matches!(part, Part::Key(_)) {
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    args
}

/// The subscription's queues, each bound to its part of the topic.
pub async fn declare_subscription(ch: &Channel, names: &Names, sub: &Subscription) -> BResult<()> {
    for part in names.parts() {
        let queue = names.queue(&sub.name, part);
        let options = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare(&queue, options, queue_arguments(names, part)).await.map_err(storage)?;
        let key = names.routing_key(&sub.topic, part);
        ch.queue_bind(&queue, &names.topics_exchange(), &key, QueueBindOptions::default(), FieldTable::default())
            .await
            .map_err(storage)?;
    }
    Ok(())
}

/// Deletes the subscription's queues and what waits in them.
pub async fn delete_subscription(ch: &Channel, names: &Names, sub: &str) -> BResult<()> {
    for part in names.parts() {
        ch.queue_delete(&names.queue(sub, part), QueueDeleteOptions::default()).await.map_err(storage)?;
    }
    Ok(())
}
