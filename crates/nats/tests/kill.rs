//! A consumer process SIGKILLed mid-batch on NATS: the events it held
//! come back when their leases end, a second consumer handles everything
//! the first did not acknowledge, and each key's events are still handled
//! in publish order across the kill. The test's body is herald-broker's
//! (`contract::process`); here is how a NATS consumer process connects.

use std::time::Duration;

use herald_broker::contract::process;

mod common;

/// The consumer as a child process (see `process::consume`); NATS answers
/// an empty pull at once, so it pauses between them.
#[tokio::test]
#[ignore = "a child process's entry point: run, with `--ignored`, by the test that spawns it"]
async fn consumer_child() {
    let Some(env) = process::ChildEnv::read() else {
        return;
    };
    let letters = common::Letters::new();
    let broker = common::connect(&common::url(), &env.prefix, letters.list.clone()).await;
    process::consume(&broker, &env.log, Duration::from_millis(20)).await;
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing_and_keys_keep_their_order() {
    let owned = common::Prefix::new("hk");
    let broker = owned.connect().await;
    process::a_consumer_killed_mid_batch_loses_nothing_and_keys_keep_their_order(&broker, &owned.name, None).await;
}
