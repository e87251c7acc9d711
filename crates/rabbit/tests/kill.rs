//! A consumer process SIGKILLed mid-batch on RabbitMQ: its connection
//! drops, the server returns what it held (counted in `x-delivery-count`),
//! a second consumer handles everything the first did not acknowledge
//! (taking over the keyed queues as their single active consumer), and
//! each key's events are still handled in publish order across the kill.
//! The consumers are processes of their own, so herald's store is a
//! PostgreSQL schema of the test's own, which they share. The test's body
//! is herald-broker's (`contract::process`); here is how a RabbitMQ
//! consumer process connects.

use std::time::Duration;

use herald_broker::contract::process;

mod common;

/// The consumer as a child process (see `process::consume`); an empty pull
/// waits a moment for deliveries itself, so it does not pause between them.
#[tokio::test]
#[ignore = "a child process's entry point: run, with `--ignored`, by the test that spawns it"]
async fn consumer_child() {
    let Some(env) = process::ChildEnv::read() else {
        return;
    };
    let store = env.store.expect("the parent gives the consumer its PostgreSQL store");
    let broker = common::connect(&common::url(), &env.prefix, common::postgres(&store).await).await;
    process::consume(&broker, &env.log, Duration::ZERO).await;
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing_and_keys_keep_their_order() {
    let owned = common::Prefix::on_postgres("hk").await;
    let (broker, store) = (owned.connect().await, owned.store_url());
    process::a_consumer_killed_mid_batch_loses_nothing_and_keys_keep_their_order(&broker, &owned.name, Some(&store))
        .await;
}
