//! Waking consumers that wait for a subscription, without polling.
//!
//! In this process, a publish wakes its topic's subscriptions, and a
//! delivery arriving wakes its own. Other herald processes on the prefix
//! get a "look now" message on the fanout exchange `{prefix}.wake`
//! (carrying the topic; a lost one costs only a poll), which their inbox
//! receives (see `inbox`). The waiting itself is herald-broker's
//! [`Wakeups`], which the NATS backend uses too.

pub use herald_broker::Wakeups;
