//! Connecting (the prefix's exchanges, this process's inbox and the
//! dead-letter drain), and removing a prefix.

use std::{collections::HashMap, sync::Arc};

use herald_broker::{DeadLetters, Ledger};
use lapin::{
    Connection, ConnectionProperties,
    options::{ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions},
};

use crate::{
    ENGINE, Error, Inner, Kept, RabbitBroker, RabbitConfig, dead,
    defs::Defs,
    inbox,
    names::{Names, valid_prefix},
    redact, topology,
    wake::Wakeups,
};

async fn open(url: &str) -> Result<Connection, Error> {
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    Connection::connect(url, props).await.map_err(|e| Error::Connect {
        engine: ENGINE,
        url: redact(url),
        reason: e.to_string(),
    })
}

impl RabbitBroker {
    /// Connects and declares what the prefix needs (each declaration is
    /// idempotent, so every process does it). Dead letters go to
    /// `dead_letters`; publish dedupe, `seq` and subscription definitions
    /// are kept in `ledger` (in herald, both are the store).
    pub async fn connect(
        config: RabbitConfig,
        dead_letters: Arc<dyn DeadLetters>,
        ledger: Arc<dyn Ledger>,
    ) -> Result<Self, Error> {
        if !valid_prefix(&config.prefix) {
            return Err(Error::Config(format!("RabbitMQ prefix `{}`: 1-32 letters, digits or `_`", config.prefix)));
        }
        if config.partitions == 0 {
            return Err(Error::Config("RabbitMQ partitions: at least 1".into()));
        }
        let process = format!("{:016x}", rand::random::<u64>());
        let wakeups = Arc::new(Wakeups::default());
        let defs = Arc::new(Defs::default());
        let kept = Kept { dead_letters: dead_letters.clone(), ledger: ledger.clone(), defs: defs.clone() };
        let session = Inner::open(&config, kept, &process, wakeups.clone()).await?;
        Ok(RabbitBroker {
            config,
            dead_letters,
            ledger,
            defs,
            process,
            wakeups,
            session: std::sync::RwLock::new(session),
            reconnecting: tokio::sync::Mutex::new(()),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl Inner {
    /// A session: a connection, the prefix's exchanges, this process's
    /// inbox and the dead-letter drain.
    pub(crate) async fn open(
        config: &RabbitConfig,
        kept: Kept,
        process: &str,
        wakeups: Arc<Wakeups>,
    ) -> Result<Arc<Inner>, Error> {
        let conn = open(&config.url).await?;
        let setup =
            |e: herald_broker::Error| Error::Setup { engine: ENGINE, url: redact(&config.url), reason: e.to_string() };
        let names = Names::new(&config.prefix, config.partitions);
        let ch = conn.create_channel().await.map_err(|e| setup(crate::storage(e)))?;
        topology::declare_base(&ch, &names).await.map_err(setup)?;
        let _ = ch.close(200, "declared").await;
        let publisher = conn.create_channel().await.map_err(|e| setup(crate::storage(e)))?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| setup(crate::storage(e)))?;
        let calls = inbox::Calls::open(&conn).await;
        let (calls, replies) = calls.map_err(setup)?;
        let inner = Arc::new(Inner {
            conn: Arc::new(conn),
            names: names.clone(),
            process: process.to_string(),
            publisher,
            publishing: tokio::sync::Mutex::new(()),
            starting: tokio::sync::Mutex::new(()),
            ledger: kept.ledger,
            defs: kept.defs,
            dedupe_window: config.dedupe_window,
            dead: kept.dead_letters.clone(),
            runtimes: std::sync::Mutex::new(HashMap::new()),
            going: std::sync::Mutex::new(Default::default()),
            wakeups,
            calls,
            tasks: std::sync::Mutex::new(vec![replies]),
        });
        // On failure, dropping `inner` stops what was started.
        let served = inbox::serve(&inner.conn, &names, Arc::downgrade(&inner), process).await.map_err(setup)?;
        inner.tasks.lock().expect("tasks").push(served);
        let drained = dead::drain(&inner.conn, names, kept.dead_letters).await.map_err(setup)?;
        inner.tasks.lock().expect("tasks").push(drained);
        Ok(inner)
    }
}

/// Removes everything herald made under `prefix`: every subscription's
/// queues (each name ever put, read from `ledger`), the dead-letter queue
/// and the exchanges on the server, then what `ledger` keeps for the
/// prefix. For tests and tools; herald processes still connected to the
/// prefix lose their setup.
pub async fn destroy(url: &str, prefix: &str, partitions: u16, ledger: &dyn Ledger) -> Result<(), String> {
    let subs = ledger.names(prefix).await.map_err(|e| e.to_string())?;
    let conn = open(url).await.map_err(|e| e.to_string())?;
    let names = Names::new(prefix, partitions);
    let mut queues: Vec<String> = subs.iter().flat_map(|s| names.parts().map(|p| names.queue(s, p))).collect();
    queues.push(names.dead_queue());
    let mut ch = conn.create_channel().await.map_err(|e| e.to_string())?;
    let mut failed = None;
    for q in queues {
        if let Err(e) = ch.queue_delete(&q, QueueDeleteOptions::default()).await {
            failed.get_or_insert(format!("{q}: {e}"));
            ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        }
    }
    for x in [names.topics_exchange(), names.dlx(), names.wake_exchange()] {
        if let Err(e) = ch.exchange_delete(&x, ExchangeDeleteOptions::default()).await {
            failed.get_or_insert(format!("{x}: {e}"));
            ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        }
    }
    let _ = conn.close(200, "removed").await;
    if let Some(failed) = failed {
        // The names stay in the ledger, for a removal again to find.
        return Err(failed);
    }
    ledger.drop_scope(prefix).await.map_err(|e| e.to_string())
}
