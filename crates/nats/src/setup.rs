//! Connecting, and the buckets and streams every herald process on a
//! prefix shares; [`destroy`] takes them all away again.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, atomic::AtomicUsize},
    time::Duration,
};

use async_nats::jetstream::{
    self, kv,
    stream::{self, StorageType},
};
use futures::StreamExt;

use herald_broker::DeadLetters;

use crate::{
    ENGINE, Error, NatsBroker, NatsConfig,
    fetch::{GiveBack, Mailbox},
    names,
    records::Records,
    redact,
    replies::Replies,
    wake,
};

/// How long a delivery's record is kept at most: longer than any lease
/// (12 h) plus any backoff a subscription can ask for.
const RECORDS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

async fn connect_client(url: &str) -> Result<async_nats::Client, Error> {
    async_nats::ConnectOptions::new()
        .name("herald")
        .connection_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .map_err(|e| Error::Connect { engine: ENGINE, url: redact(url), reason: e.to_string() })
}

/// A bucket, made if it is not there yet. Its stream is made here as the
/// KV design (ADR-8) lays it out, not through async-nats's
/// `create_key_value`: that first reads the account's info, whose 2.9
/// shape the client no longer parses.
pub(crate) async fn bucket(js: &jetstream::Context, name: String, max_age: Duration) -> Result<kv::Store, String> {
    if let Ok(store) = js.get_key_value(&name).await {
        return Ok(store);
    }
    let config = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    // Another herald process may make it in between: the same config is no error.
    js.get_or_create_stream(config).await.map_err(|e| e.to_string())?;
    js.get_key_value(&name).await.map_err(|e| e.to_string())
}

impl NatsBroker {
    /// Connects and makes what herald needs on the server: the buckets of
    /// subscriptions and delivery records. Topic streams and consumers come
    /// with publishes and subscriptions. Dead letters go to `dead`.
    pub async fn connect(config: NatsConfig, dead: Arc<dyn DeadLetters>) -> Result<Self, Error> {
        if !names::valid_prefix(&config.prefix) {
            return Err(Error::Config(format!(
                "the NATS prefix `{}` must be 1-32 letters, digits or `_`",
                config.prefix
            )));
        }
        let names = names::Names::new(&config.prefix, config.partitions);
        let client = connect_client(&config.url).await?;
        let js = jetstream::new(client.clone());
        let setup = |reason: String| Error::Setup { engine: ENGINE, url: redact(&config.url), reason };
        let subs = bucket(&js, names.subs_bucket(), Duration::ZERO)
            .await
            .map_err(|e| setup(format!("the subscriptions bucket: {e}")))?;
        let attempts = bucket(&js, names.attempts_bucket(), RECORDS_KEPT)
            .await
            .map_err(|e| setup(format!("the attempts bucket: {e}")))?;
        let wakeups = Arc::new(wake::Wakeups::default());
        let listener = wake::listen(&client, &names, wakeups.clone()).await.map_err(setup)?;
        let records = Records::new(attempts);
        let give_back = GiveBack {
            client: client.clone(),
            names: names.clone(),
            records: records.clone(),
            wakeups: wakeups.clone(),
        };
        let (mailbox, postman) = Mailbox::open(give_back).await.map_err(setup)?;
        let (replies, router) = Replies::open(&client).await.map_err(setup)?;
        Ok(NatsBroker {
            client,
            js,
            names,
            dedupe_window: config.dedupe_window,
            subs,
            records,
            streams: Mutex::new(HashSet::new()),
            wakeups,
            turn: AtomicUsize::new(0),
            ack_waits: Default::default(),
            mailbox,
            replies,
            answered: Default::default(),
            dead,
            listener,
            postman,
            router,
        })
    }
}

/// Deletes every stream and bucket under `prefix`: topics, their consumers,
/// subscriptions and records. For tests and for taking a
/// deployment down; nothing of another prefix is touched.
pub async fn destroy(url: &str, prefix: &str) -> Result<usize, Error> {
    if !names::valid_prefix(prefix) {
        return Err(Error::Config(format!("`{prefix}` is not a prefix herald makes")));
    }
    let js = jetstream::new(connect_client(url).await?);
    let fail = |e: &dyn std::fmt::Display| Error::Setup { engine: ENGINE, url: redact(url), reason: e.to_string() };
    let ours = |name: &str| {
        name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with("-t-"))
            || name == format!("KV_{prefix}-subs")
            || name == format!("KV_{prefix}-attempts")
    };
    let mut doomed = Vec::new();
    let mut all = js.stream_names();
    while let Some(name) = all.next().await {
        let name = name.map_err(|e| fail(&e))?;
        if ours(&name) {
            doomed.push(name);
        }
    }
    for name in &doomed {
        js.delete_stream(name).await.map_err(|e| fail(&e))?;
    }
    Ok(doomed.len())
}
