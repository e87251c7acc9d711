//! What one client connection may cost: how long each part of a request
//! may take, how large its head may be, and when an idle one gives its
//! place back. The API's listener and the gateway's express lane hold
//! every connection to these.

pub mod host;
pub mod idle;

use std::time::Duration;

/// How long a client may take to send its request head, once begun.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause in a request body before the request is given up.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a write may wait on a client that reads nothing.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head; a larger one is answered 431.
pub const MAX_HEAD: usize = 32 * 1024;
