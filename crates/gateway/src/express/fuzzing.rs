//! For fuzz/: the lane's readers driven by bytes alone, since `request` and
//! `chunked` are private. Not part of herald's API; adds no behaviour.

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    ops::Range,
    sync::Arc,
};

use herald_http::{
    auth::{Auth, config::AuthConfig},
    guard::Guard,
};

use super::{
    chunked::Chunked,
    request::{self, Read},
};
use crate::{
    Around, Gateway, GatewayConfig, forward,
    registry::{Registry, ServiceConfig, allow::RegistryConfig},
};

/// Where a chunked body given in `pieces` ends, counted from its start, as
/// the lane finds it; `Err(())` where it is malformed.
#[allow(clippy::result_unit_err)]
pub fn chunked_end<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<usize>, ()> {
    let mut c = Chunked::default();
    let mut at = 0;
    for piece in pieces {
        if let Some(n) = c.feed(piece).map_err(|_| ())? {
            return Ok(Some(at + n));
        }
        at += piece.len();
    }
    Ok(None)
}

/// What the lane made of a buffer: [`Read`] with the service left out.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Partial,
    Hyper,
    Take {
        len: usize,
        method: Range<usize>,
        target: Range<usize>,
        slash: bool,
        body: Range<usize>,
        close: bool,
        head: bool,
        retryable: bool,
        refused: Option<u64>,
        /// The header lines sent upstream.
        headers: Vec<u8>,
    },
}

/// A gateway as a herald without `[auth]` has it: one HTTP/1.1 service,
/// `shop`, whose `/internal` its workflows call; tracing off.
pub struct Lane {
    gw: Gateway,
    peer: forward::Peer,
}

impl Lane {
    /// Needs the process's TLS provider installed, as the server installs
    /// it: the service's clients are built with it.
    pub fn new() -> anyhow::Result<Lane> {
        let shop = ServiceConfig::new(vec!["http://127.0.0.1:9".into()]);
        let registry =
            Registry::from_config([(&"shop".to_string(), &shop)], &RegistryConfig::default(), Default::default())?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 7000));
        let around = Around {
            registry: Arc::new(registry),
            auth: Arc::new(Auth::new(&AuthConfig::default())?),
            guard: Arc::new(Guard::new(true, listen, None)),
            stopping: Default::default(),
            tracer: herald_trace::Tracer::off(),
        };
        let called = HashMap::from([("shop".to_string(), BTreeSet::from(["/internal".to_string()]))]);
        let gw = Gateway::new(GatewayConfig::default(), called, around)?;
        Ok(Lane { gw, peer: forward::Peer::new(IpAddr::V4(Ipv4Addr::LOCALHOST), false) })
    }

    /// The lane's reading of the request at the start of `buf`.
    pub fn read(&self, buf: &[u8]) -> Verdict {
        let mut headers = Vec::new();
        match request::read(buf, &self.gw, &self.peer, &mut headers) {
            Read::Partial => Verdict::Partial,
            Read::Hyper => Verdict::Hyper,
            Read::Take(r) => Verdict::Take {
                len: r.len,
                method: r.method,
                target: r.target,
                slash: r.slash,
                body: r.body,
                close: r.close,
                head: r.head,
                retryable: r.retryable,
                refused: r.refused,
                headers,
            },
        }
    }
}
