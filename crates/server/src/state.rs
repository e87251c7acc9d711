//! What every handler reads: the engine, the gateway, the limits and the
//! callers' checks. The ground floor of the server's modules.

use std::sync::Arc;

use herald_engine::{Engine, dispatch::Dispatcher};
use herald_gateway::Gateway;
use herald_http::{auth::Auth, guard::Guard};

use crate::{
    config::{BrokerConfig, Limits},
    streams::Streams,
};

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub gateway: Arc<Gateway>,
    pub dispatcher: Dispatcher,
    pub limits: Limits,
    /// Limits on published events.
    pub events: BrokerConfig,
    pub auth: Arc<Auth>,
    /// Without credentials: which hosts and origins are answered.
    pub guard: Arc<Guard>,
    /// End users' open event streams.
    pub streams: Arc<Streams>,
}
