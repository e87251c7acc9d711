//! How many event streams each end user holds open (`limits.max_streams_per_user`).
//!
//! A stream costs herald a connection, a place in a hub and store reads
//! for as long as it lasts; one user's browser (or a script with their
//! token) must not take an unbounded share. A [`Slot`] is taken when a
//! stream opens and given back when it is dropped, however the stream ends.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use herald_http::auth::Caller;
use herald_http::problem::ApiError;

/// Open streams per subject; a subject with none has no entry.
pub struct Streams {
    limit: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream of one end user; dropping it frees the place.
pub struct Slot {
    subject: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Streams {
    pub fn new(limit: usize) -> Self {
        Streams { limit: limit.max(1), open: Arc::default() }
    }

    /// A place for a new stream of `caller`: `None` for services and admins
    /// (not counted), 429 when an end user already holds the most allowed.
    pub fn take(&self, caller: &Caller) -> Result<Option<Slot>, ApiError> {
        let Some(subject) = caller.own_subject() else { return Ok(None) };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(subject.to_string()).or_insert(0);
        if *n >= self.limit {
            return Err(ApiError::TooManyStreams(self.limit));
        }
        *n += 1;
        Ok(Some(Slot { subject: subject.to_string(), open: self.open.clone() }))
    }

    /// Streams `subject` holds open now.
    #[cfg(test)]
    fn held(&self, subject: &str) -> usize {
        self.open.lock().unwrap().get(subject).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.subject) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.subject);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_up_to_the_limit_and_a_place_back_when_a_stream_ends() {
        let streams = Streams::new(2);
        let alice = Caller::User("alice".into(), None);
        let a = streams.take(&alice).unwrap();
        let _b = streams.take(&alice).unwrap();
        assert!(matches!(streams.take(&alice), Err(ApiError::TooManyStreams(2))));
        assert!(streams.take(&Caller::User("bob".into(), None)).unwrap().is_some(), "bob has his own count");
        drop(a);
        assert_eq!(streams.held("alice"), 1);
        assert!(streams.take(&alice).unwrap().is_some());
    }

    #[test]
    fn services_and_admins_are_not_counted_and_nothing_is_kept_for_users_with_none() {
        let streams = Streams::new(1);
        for _ in 0..3 {
            assert!(streams.take(&Caller::Admin("ops".into())).unwrap().is_none());
            assert!(
                streams
                    .take(&Caller::Service(herald_http::auth::Speaker {
                        name: "shop".into(),
                        services: std::sync::Arc::new([])
                    }))
                    .unwrap()
                    .is_none()
            );
        }
        drop(streams.take(&Caller::User("carol".into(), None)).unwrap());
        assert!(streams.open.lock().unwrap().is_empty());
    }
}
