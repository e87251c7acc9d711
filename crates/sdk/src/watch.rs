//! Following an operation live: its timeline as a `Stream` of events, over
//! Server-Sent Events. A dropped connection is reopened with
//! `Last-Event-ID`, so the stream has no gap and no repeat; it ends after
//! the operation's final event.
//!
//! The SSE framing herald sends (`id:` and `data:` lines) is read here
//! directly: a dozen lines, where the EventSource crates would bring their
//! own HTTP stacks.

use std::time::Duration;

use futures::{Stream, StreamExt};
use herald_core::Event;
use reqwest::Method;

use crate::{Client, Error, Result};

/// Times a watch reconnects without receiving anything before it gives up.
const RECONNECTS: u32 = 10;

impl Client {
    /// The operation's timeline from the start (or after `after`), then
    /// live, until its final event.
    ///
    /// ```no_run
    /// # async fn run(herald: herald_sdk::Client) -> herald_sdk::Result<()> {
    /// use futures::StreamExt;
    /// let mut events = std::pin::pin!(herald.watch("op_…", 0));
    /// while let Some(e) = events.next().await {
    ///     println!("{}", e?.message);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch(&self, id: &str, after: u64) -> impl Stream<Item = Result<Event>> + Send + 'static {
        let state = Watch { client: self.clone(), id: id.to_string(), last: after, failures: 0, ended: false };
        futures::stream::unfold((state, Vec::<Event>::new().into_iter()), |(mut w, mut pending)| async move {
            loop {
                if let Some(e) = pending.next() {
                    w.last = e.seq;
                    w.ended |= e.kind.is_final();
                    return Some((Ok(e), (w, pending)));
                }
                if w.ended {
                    return None;
                }
                match w.read_some().await {
                    Ok(batch) => pending = batch.into_iter(),
                    Err(e) => {
                        w.ended = true;
                        return Some((Err(e), (w, pending)));
                    }
                }
            }
        })
    }
}

struct Watch {
    client: Client,
    id: String,
    last: u64,
    failures: u32,
    ended: bool,
}

impl Watch {
    /// Opens the stream after the last event seen and reads until at least
    /// one new event comes (or the stream ends, to be reopened).
    async fn read_some(&mut self) -> Result<Vec<Event>> {
        loop {
            let req = self
                .client
                .request(Method::GET, &format!("/v1/operations/{}/events", self.id))
                .header("last-event-id", self.last.to_string());
            let resp = match req.send().await {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    let status = r.status();
                    return Err(crate::client::problem(status, &r.bytes().await.unwrap_or_default()));
                }
                Err(e) => {
                    self.backoff(e.into()).await?;
                    continue;
                }
            };
            let mut body = resp.bytes_stream();
            let mut buf = Vec::new();
            let mut got = Vec::new();
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { break };
                buf.extend_from_slice(&chunk);
                while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                    let frame: Vec<u8> = buf.drain(..end + 2).collect();
                    if let Some(e) = parse(&frame)? {
                        got.push(e);
                    }
                }
                if !got.is_empty() {
                    self.failures = 0;
                    return Ok(got);
                }
            }
            // The connection ended without news: open it again from where we are.
            self.backoff(Error::Decode("the event stream closed".into())).await?;
        }
    }

    async fn backoff(&mut self, last: Error) -> Result<()> {
        self.failures += 1;
        if self.failures > RECONNECTS {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(100 * u64::from(self.failures))).await;
        Ok(())
    }
}

/// One SSE frame: its `data:` line as an event; comments (keep-alives) are none.
fn parse(frame: &[u8]) -> Result<Option<Event>> {
    let text = std::str::from_utf8(frame).map_err(|e| Error::Decode(e.to_string()))?;
    match text.lines().find_map(|l| l.strip_prefix("data:")) {
        Some(data) => serde_json::from_str(data.trim_start()).map(Some).map_err(|e| Error::Decode(e.to_string())),
        None => Ok(None),
    }
}
