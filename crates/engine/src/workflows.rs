//! The workflow definitions this server runs: read from the workflows
//! folder at start-up, checked against the configured services, and kept in
//! the store so operations started under an older version finish under it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use herald_core::{Workflow, workflow};
use herald_store::Store;

use herald_gateway::registry::ServiceConfig;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read workflows from {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {error}")]
    Invalid { path: String, error: workflow::WorkflowError },
    #[error("{path}: step `{step}` calls service `{service}`, which is not configured under [services]")]
    UnknownService { path: String, step: String, service: String },
    #[error("{path}: workflow `{name}` is also defined in {other}")]
    Duplicate { path: String, name: String, other: String },
    #[error("storage: {0}")]
    Store(#[from] herald_store::Error),
}

/// Parses every `*.toml` in `dir`, in name order. Used by `herald check` too.
pub fn read_dir(dir: &Path, services: &BTreeMap<String, ServiceConfig>) -> Result<Vec<(String, Workflow)>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Read { path: dir.into(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read { path: path.clone(), source })?;
        out.push(parse_checked(&path.display().to_string(), &text, services)?);
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (path, wf) in &out {
        if let Some(other) = seen.insert(wf.name.clone(), path.clone()) {
            return Err(LoadError::Duplicate { path: path.clone(), name: wf.name.clone(), other });
        }
    }
    Ok(out)
}

/// One workflow file's text, parsed and checked against the services.
pub fn parse_checked(
    path: &str,
    text: &str,
    services: &BTreeMap<String, ServiceConfig>,
) -> Result<(String, Workflow), LoadError> {
    let wf = workflow::from_toml(text).map_err(|error| LoadError::Invalid { path: path.into(), error })?;
    for (step, service) in wf.services() {
        if !services.contains_key(service) {
            return Err(LoadError::UnknownService {
                path: path.into(),
                step: step.name.clone(),
                service: service.into(),
            });
        }
    }
    Ok((path.to_string(), wf))
}

/// Every known version of every workflow; the newest version starts new operations.
#[derive(Default)]
pub struct Workflows {
    versions: RwLock<HashMap<(String, u32), Arc<Workflow>>>,
    latest: RwLock<BTreeMap<String, Arc<Workflow>>>,
}

impl Workflows {
    /// Stores the current definitions, then loads every stored version.
    pub async fn load(current: Vec<Workflow>, store: &dyn Store) -> Result<Self, LoadError> {
        let this = Workflows::default();
        for wf in current {
            let source = serde_json::to_string(&wf.source).unwrap_or_default();
            if store.put_workflow(&wf.name, wf.version, &source).await? {
                tracing::info!(workflow = %wf.name, version = wf.version, "workflow definition stored");
            }
            this.latest.write().expect("workflows").insert(wf.name.clone(), Arc::new(wf));
        }
        for (name, version, source) in store.workflows().await? {
            match workflow::from_json(source.as_bytes()) {
                Ok(wf) => {
                    this.versions.write().expect("workflows").insert((name, version), Arc::new(wf));
                }
                Err(e) => tracing::warn!(workflow = %name, version, error = %e, "a stored workflow no longer parses"),
            }
        }
        // The files win for their own versions.
        for wf in this.latest.read().expect("workflows").values() {
            this.versions.write().expect("workflows").insert((wf.name.clone(), wf.version), wf.clone());
        }
        Ok(this)
    }

    pub fn latest(&self, name: &str) -> Option<Arc<Workflow>> {
        self.latest.read().expect("workflows").get(name).cloned()
    }

    pub fn version(&self, name: &str, version: u32) -> Option<Arc<Workflow>> {
        self.versions.read().expect("workflows").get(&(name.to_string(), version)).cloned()
    }

    pub fn all_latest(&self) -> Vec<Arc<Workflow>> {
        self.latest.read().expect("workflows").values().cloned().collect()
    }

    /// Topics that `await` steps of any known version listen to, with the
    /// event types they wait for.
    pub fn awaited(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for wf in self.versions.read().expect("workflows").values() {
            for (_, a) in wf.awaits() {
                out.entry(a.topic.clone()).or_default().insert(a.kind.clone());
            }
        }
        out
    }

    /// The paths each service is called at by steps and compensations of
    /// any known version: the gateway keeps them from its clients.
    pub fn called_paths(&self) -> HashMap<String, BTreeSet<String>> {
        let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
        for wf in self.versions.read().expect("workflows").values() {
            for (_, c) in wf.calls() {
                let path = c.path.split('?').next().unwrap_or(&c.path);
                out.entry(c.service.clone()).or_default().insert(path.to_string());
            }
        }
        out
    }

    /// The distinct ways `await` steps on `topic` for `kind` name their
    /// operation.
    pub fn await_rules(&self, topic: &str, kind: &str) -> Vec<workflow::Await> {
        let mut rules: Vec<workflow::Await> = Vec::new();
        for wf in self.versions.read().expect("workflows").values() {
            for (_, a) in wf.awaits().filter(|(_, a)| a.topic == topic && a.kind == kind) {
                if !rules.iter().any(|r| r.matches == a.matches) {
                    rules.push(a.clone());
                }
            }
        }
        rules
    }
}
