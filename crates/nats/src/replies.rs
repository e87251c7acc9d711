//! Answers to many messages sent at once, on one subscription: each
//! message of a batch names `{inbox}.{batch}.{i}` as its reply subject,
//! and the batch collects what comes back by `i`.
//!
//! Written out rather than taken from async-nats's requests (its
//! JetStream publish is one), which each make an inbox, a channel, an
//! entry in the connection's table and a timer of their own: at one per
//! event published, those were a sixth of herald's CPU on NATS. Here a
//! batch of events costs one channel and one timer.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_nats::{Message, Subject};
use futures::StreamExt;
use tokio::sync::mpsc;

type Sender = mpsc::UnboundedSender<(usize, Message)>;

/// Where the answers to this process's batches arrive.
pub struct Replies {
    inbox: String,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Sender>>,
}

/// One batch's answers, until it is dropped.
pub struct Batch<'a> {
    replies: &'a Replies,
    id: u64,
    answers: mpsc::UnboundedReceiver<(usize, Message)>,
}

impl Replies {
    /// Subscribes to the process's reply subjects and routes what
    /// arrives; ends when aborted.
    pub async fn open(client: &async_nats::Client) -> Result<(Arc<Replies>, tokio::task::AbortHandle), String> {
        let inbox = client.new_inbox();
        let mut arriving = client.subscribe(format!("{inbox}.*.*")).await.map_err(|e| e.to_string())?;
        let replies = Arc::new(Replies { inbox, next: AtomicU64::new(0), open: Mutex::new(HashMap::new()) });
        let routes = replies.clone();
        let task = tokio::spawn(async move {
            while let Some(m) = arriving.next().await {
                let Some((id, i)) = routes.address(&m.subject) else { continue };
                let to = routes.open.lock().expect("replies").get(&id).cloned();
                // A batch that stopped waiting takes nothing more.
                if let Some(to) = to {
                    let _ = to.send((i, m));
                }
            }
        });
        Ok((replies, task.abort_handle()))
    }

    /// The batch and index a reply subject names.
    fn address(&self, subject: &str) -> Option<(u64, usize)> {
        let (id, i) = subject.strip_prefix(self.inbox.as_str())?.strip_prefix('.')?.split_once('.')?;
        Some((id.parse().ok()?, i.parse().ok()?))
    }

    pub fn batch(&self) -> Batch<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (to, answers) = mpsc::unbounded_channel();
        self.open.lock().expect("replies").insert(id, to);
        Batch { replies: self, id, answers }
    }
}

impl Batch<'_> {
    /// The reply subject of the batch's message `i`.
    pub fn reply_to(&self, i: usize) -> Subject {
        Subject::from(format!("{}.{}.{i}", self.replies.inbox, self.id))
    }

    /// The answers to messages `0..n`, each the first that came for it,
    /// `None` where none came `within`.
    pub async fn collect(&mut self, n: usize, within: Duration) -> Vec<Option<Message>> {
        let mut out: Vec<Option<Message>> = (0..n).map(|_| None).collect();
        let mut missing = n;
        let deadline = tokio::time::Instant::now() + within;
        while missing > 0 {
            let Ok(Some((i, m))) = tokio::time::timeout_at(deadline, self.answers.recv()).await else { break };
            if let Some(slot) = out.get_mut(i)
                && slot.is_none()
            {
                *slot = Some(m);
                missing -= 1;
            }
        }
        out
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.replies.open.lock().expect("replies").remove(&self.id);
    }
}
