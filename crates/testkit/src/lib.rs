//! What herald's test suites (and its bench) would otherwise each write
//! again: a real herald in-process on a temporary directory, waiting on a
//! condition with a deadline, raw HTTP/1.1, a scripted step service, nginx
//! in front of something, the workflow texts they run, a place of a
//! test's own on a broker server, the CloudEvent tests publish, `/metrics`
//! read as Prometheus reads it, an OTLP receiver that keeps the spans sent
//! to it, a small disk that fills up, and certificates for herald's TLS
//! listener.
//!
//! Only a dev-dependency, except for the bench, which shares the workflow
//! fixtures and the readiness wait.

pub mod auth;
mod broker;
mod event;
mod herald;
mod net;
pub mod nginx;
pub mod openmetrics;
pub mod otlp;
pub mod process;
mod raw;
mod step_service;
pub mod tls;
pub mod tmpfs;
pub mod tools;
mod views;
mod wait;
pub mod workflow;

pub use broker::{BrokerPlace, Engine};
pub use event::cloud_event;
pub use herald::{Build, Herald, Store, client, client_within};
pub use net::free_port;
pub use raw::{RawAnswer, raw};
pub use step_service::{Call, Reply, StepService};
pub use views::{event_types, step};
pub use wait::{Probe, all_succeeded, eventually, eventually_blocking, ready, settled, until};
pub use workflow::sequential;
