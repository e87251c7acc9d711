//! A real herald in this process, on a loopback port of its own and a
//! temporary directory that lives as long as it does.

use std::{any::Any, path::PathBuf, sync::Arc};

use axum::Router;
use herald_server::{Application, Config, workflows};
use tokio::{sync::oneshot, task::JoinHandle};

/// A running herald: stopped gracefully by [`Herald::stop`], or when dropped.
pub struct Herald {
    /// `http://127.0.0.1:<port>` (`https://` with `[tls]`).
    pub base: String,
    pub http: reqwest::Client,
    /// Kept alive with the server; its data is in `data/` unless
    /// [`Build::data_dir`] put it elsewhere.
    pub dir: tempfile::TempDir,
    /// The store [`Build::store`] gave it, if any.
    pub store: Option<Store>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A store of a test's own other than the embedded one (a PostgreSQL schema,
/// say): its URL, and what keeps it alive until the last herald or test
/// holding a clone lets go, so that a herald restarted on it finds its data.
#[derive(Clone)]
pub struct Store {
    pub url: String,
    _keep: Arc<dyn Any + Send + Sync>,
}

impl Store {
    pub fn new(url: String, keep: impl Any + Send + Sync) -> Self {
        Store { url, _keep: Arc::new(keep) }
    }
}

/// A reqwest client. reqwest is built with `rustls-no-provider`: without a
/// provider installed, building a client panics, even for http:// URLs.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// As [`client`], each request given at most `limit`: a request that never
/// ends fails the test, saying which, instead of holding the run.
pub fn client_within(limit: std::time::Duration) -> reqwest::Client {
    drop(client()); // installs the TLS provider reqwest needs
    reqwest::Client::builder().timeout(limit).build().unwrap()
}

impl Herald {
    /// A herald with no workflow and the default configuration, until told
    /// otherwise.
    pub fn build<'a>() -> Build<'a> {
        Build { dir: None, data_dir: None, store: None, files: Vec::new(), tweaks: Vec::new(), routes: Router::new() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully, waits for it, and hands back its
    /// directory (to start another herald on the same data).
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
        self.dir
    }
}

/// A change to the configuration, made before herald starts.
type Tweak<'a> = Box<dyn FnOnce(&mut Config) + 'a>;

/// What a [`Herald`] starts with.
pub struct Build<'a> {
    dir: Option<tempfile::TempDir>,
    data_dir: Option<PathBuf>,
    store: Option<Store>,
    files: Vec<(String, String)>,
    tweaks: Vec<Tweak<'a>>,
    routes: Router,
}

impl<'a> Build<'a> {
    /// On this directory (one an earlier herald stopped on) rather than a new one.
    pub fn dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// With its data here (beside another app's) rather than in its directory.
    pub fn data_dir(mut self, path: PathBuf) -> Self {
        self.data_dir = Some(path);
        self
    }

    /// On this store rather than the embedded one in its data directory
    /// (configuration tweaks may still name another).
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Running these workflow texts (each as a file `test.toml`).
    pub fn workflows(mut self, texts: &[&str]) -> Self {
        self.files.extend(texts.iter().map(|t| ("test.toml".to_string(), t.to_string())));
        self
    }

    /// Running this workflow file.
    pub fn file(mut self, name: &str, text: &str) -> Self {
        self.files.push((name.into(), text.into()));
        self
    }

    /// With the configuration adjusted by `tweak` (after earlier tweaks).
    pub fn config(mut self, tweak: impl FnOnce(&mut Config) + 'a) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// With `routes` served beside herald's own (as the demo's are).
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = routes;
        self
    }

    /// Starts it; the workflows are checked against the configured services.
    pub async fn start(self) -> Herald {
        let dir = self.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let data_dir = self.data_dir.unwrap_or_else(|| dir.path().join("data"));
        let store_url = self.store.as_ref().map(|s| s.url.clone());
        let mut config =
            Config { listen: "127.0.0.1:0".parse().unwrap(), data_dir, store: store_url, ..Config::default() };
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        let check = |(file, text): &(String, String)| {
            workflows::parse_checked(file, text, &config.services).unwrap_or_else(|e| panic!("{file}: {e:#}")).1
        };
        let defs = self.files.iter().map(check).collect();
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let app = Application::build_with(config, defs).await.expect("herald starts").merge(self.routes);
        let base = format!("{scheme}://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Herald { base, http: client(), dir, store: self.store, stop: Some(stop), handle: Some(handle) }
    }
}
