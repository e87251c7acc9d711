//! The express lane's reader: a request head at the start of the buffer
//! (taken by the lane, hyper's, or not complete yet), and where a chunked
//! body ends. Beyond not panicking:
//! - a head the lane takes lies within the bytes read, and reads the same
//!   with more bytes after it, and as partial when cut short;
//! - a chunked body gets one verdict however its bytes are split.

use std::sync::OnceLock;

use herald_gateway::express::fuzzing::{Lane, Verdict, chunked_end};

fn lane() -> &'static Lane {
    static LANE: OnceLock<Lane> = OnceLock::new();
    LANE.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Lane::new().expect("the fuzzing gateway builds")
    })
}

fn main() {
    lane();
    afl::fuzz!(|data: &[u8]| {
        let Some((&split, rest)) = data.split_first() else { return };
        chunked(rest, usize::from(split % 32) + 1);
        request(rest);
    });
}

fn request(buf: &[u8]) {
    let lane = lane();
    let verdict = fixed(lane.read(buf));
    let Verdict::Take { len, method, target, body, .. } = &verdict else { return };
    let head = body.start;
    assert!(method.end <= head && target.end <= head && body.start <= body.end && *len == body.end);
    assert!(!buf[method.clone()].is_empty());
    let mut more = buf.to_vec();
    more.extend_from_slice(b"GET /gw/shop/ HTTP/1.1\r\n");
    assert_eq!(fixed(lane.read(&more)), verdict, "bytes after the head change nothing");
    for cut in [head - 1, head / 2] {
        assert_eq!(lane.read(&buf[..cut]), Verdict::Partial, "cut at {cut} of {head}");
    }
}

/// The verdict less the ids the lane makes afresh for each request (its
/// span's `traceparent`, a correlation id), which differ between reads.
fn fixed(mut v: Verdict) -> Verdict {
    if let Verdict::Take { headers, .. } = &mut v {
        let fresh = |line: &&[u8]| {
            let l = line.to_ascii_lowercase();
            l.starts_with(b"traceparent:") || l.starts_with(b"x-correlation-id:")
        };
        *headers = headers.split(|&b| b == b'\n').filter(|l| !fresh(l)).collect::<Vec<_>>().join(&b'\n');
    }
    v
}

fn chunked(bytes: &[u8], step: usize) {
    let whole = chunked_end([bytes]);
    assert_eq!(chunked_end(bytes.chunks(step)), whole, "split every {step}");
    assert_eq!(chunked_end(bytes.chunks(1)), whole, "split every byte");
    if let Ok(Some(n)) = whole {
        assert!(n <= bytes.len());
        assert_eq!(chunked_end([&bytes[..n]]), whole, "it ends where it said");
    }
}
