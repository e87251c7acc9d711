//! Subscription definitions. RabbitMQ has no key-value store, so they are
//! kept in herald's store (the [`herald_broker::Ledger`]), shared by every
//! herald process on the prefix; a put, a delete, a read by name and the
//! list go to it, so each sees every change made before it, through any
//! process.
//!
//! The calls that use a subscription (pull, ack, nack, stats, …) come many
//! times a second: they use the definition as this process last read it,
//! for up to [`FRESH_FOR`], rather than ask the store each time. A change
//! made through another process reaches them within that; one made
//! through this process, at once. A name not known here is always looked
//! for in the store.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long a definition read from the store serves the calls that use it.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Definitions as last read, by name: the spec (`RawSubscription` as
/// JSON) and when it was read.
#[derive(Default)]
pub struct Defs {
    by_name: Mutex<HashMap<String, (String, Instant)>>,
}

impl Defs {
    /// The definition, if read less than [`FRESH_FOR`] ago.
    pub fn recent(&self, name: &str) -> Option<String> {
        let by_name = self.by_name.lock().expect("defs");
        by_name.get(name).filter(|(_, at)| at.elapsed() < FRESH_FOR).map(|(spec, _)| spec.clone())
    }

    /// What the store just said of `name`: its definition, or none.
    pub fn keep(&self, name: &str, spec: Option<&str>) {
        let mut by_name = self.by_name.lock().expect("defs");
        match spec {
            Some(spec) => by_name.insert(name.to_string(), (spec.to_string(), Instant::now())),
            None => by_name.remove(name),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_serves_for_a_moment_and_a_removal_at_once() {
        let defs = Defs::default();
        defs.keep("s", Some("{}"));
        assert_eq!(defs.recent("s").as_deref(), Some("{}"));
        defs.by_name.lock().unwrap().get_mut("s").unwrap().1 -= FRESH_FOR;
        assert_eq!(defs.recent("s"), None, "read too long ago: asked of the store again");
        defs.keep("s", Some("{}"));
        defs.keep("s", None);
        assert_eq!(defs.recent("s"), None);
    }
}
