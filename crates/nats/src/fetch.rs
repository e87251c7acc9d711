//! One pull request to one consumer, written out rather than taken from
//! async-nats's `fetch`, because its exact shape matters on a 2.9 server:
//!
//! - `no_wait` answers at once when the consumer has nothing at all;
//! - `expires` must be set too: on a partition whose one event is out,
//!   a request without it would stay on the server and later hand the
//!   next event to an inbox nobody reads any more (it would then come
//!   back only after a whole `ack_wait`, one attempt spent). With it the
//!   server ends the request after `expires`, and what it sent before is
//!   read here.

use std::time::Duration;

use async_nats::{Message, StatusCode};
use futures::StreamExt;
use serde_json::json;

/// How long a request may wait on a consumer whose events are all out:
/// long enough for one whose lease just ended to come back, short enough
/// that a pull over many partitions answers quickly.
pub const EXPIRES: Duration = Duration::from_millis(5);

/// How much longer than `expires` the server's closing word may take.
const GRACE: Duration = Duration::from_secs(2);

/// Up to `batch` events from `consumer` of `stream`.
pub async fn fetch(
    client: &async_nats::Client,
    stream: &str,
    consumer: &str,
    batch: usize,
) -> Result<Vec<Message>, String> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.map_err(|e| e.to_string())?;
    let request = json!({"batch": batch, "no_wait": true, "expires": EXPIRES.as_nanos() as u64});
    client
        .publish_with_reply(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"), inbox, request.to_string().into())
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + EXPIRES + GRACE;
    let mut out = Vec::new();
    while out.len() < batch {
        let Ok(Some(m)) = tokio::time::timeout_at(deadline, replies.next()).await else {
            tracing::warn!(stream, consumer, "a pull request had no closing word from the server");
            break;
        };
        match m.status {
            None | Some(StatusCode::OK) => out.push(m),
            // Nothing (more) now, or the request ran out: all said.
            Some(StatusCode::NOT_FOUND | StatusCode::TIMEOUT) => break,
            Some(status) if out.is_empty() => {
                return Err(format!("pulling from {stream}/{consumer}: {status} {:?}", m.description));
            }
            Some(_) => break,
        }
    }
    Ok(out)
}
