//! CloudEvents as the publish API reads them: structured, batch and binary
//! mode, chosen by the first byte. Beyond not panicking: an event accepted
//! writes out and reads back as the same event, and the publish path's
//! shortcut (serde straight from the text) never accepts an event the long
//! way (a JSON tree, checked) would refuse or read otherwise.

use herald_broker::CloudEvent;
use herald_server::api::fuzzing::read_events;

const MAX_BATCH: usize = 8;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&mode, rest)) = data.split_first() else { return };
        let events = match mode % 3 {
            0 => structured(rest),
            1 => batch(rest),
            _ => binary(rest),
        };
        for e in events {
            assert_eq!(CloudEvent::from_json(e.to_json()).as_ref(), Ok(&e), "an accepted event reads back the same");
            assert!(e.encoded_len() >= 2);
        }
    });
}

fn structured(body: &[u8]) -> Vec<CloudEvent> {
    let ct: &[(&[u8], &[u8])] = &[(b"content-type", b"application/cloudevents+json; charset=utf-8")];
    let read = read_events(ct, body, MAX_BATCH);
    let shortcut = serde_json::from_slice::<CloudEvent>(body).ok().and_then(CloudEvent::checked);
    let long = serde_json::from_slice(body).ok().map(CloudEvent::from_json);
    if let Some(e) = &shortcut {
        assert_eq!(long.as_ref().map(|l| l.as_ref().ok()), Some(Some(e)), "the shortcut and the long way agree");
    }
    read.unwrap_or_default()
}

fn batch(body: &[u8]) -> Vec<CloudEvent> {
    let ct: &[(&[u8], &[u8])] = &[(b"content-type", b"application/cloudevents-batch+json")];
    let read = read_events(ct, body, MAX_BATCH);
    if let Ok(events) = &read {
        assert!((1..=MAX_BATCH).contains(&events.len()));
    }
    read.unwrap_or_default()
}

/// `name: value` lines up to an empty one, then the body; the
/// content-type is one of the lines, if any.
fn binary(input: &[u8]) -> Vec<CloudEvent> {
    let (head, body) = match input.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&input[..i], &input[i + 2..]),
        None => (input, &[][..]),
    };
    let headers: Vec<(&[u8], &[u8])> = head
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let i = line.iter().position(|&b| b == b':')?;
            Some((&line[..i], line[i + 1..].trim_ascii()))
        })
        .collect();
    read_events(&headers, body, MAX_BATCH).unwrap_or_default()
}
