//! Where a reconnecting event stream resumes (`Last-Event-ID`, else
//! `?after=`) and the list cursors herald hands out (operation ids; dead
//! letters' are numbers). Beyond not panicking: a `Last-Event-ID` herald
//! accepts is the event number it reads as, and an operation cursor that
//! reads writes back as one that reads the same.

use herald_core::OperationId;
use herald_server::api::events::resume_point;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let after = data.first().map(|&b| u64::from(b) * 1_000);

        assert_eq!(resume_point(None, after).ok(), Some(after.unwrap_or(0)));
        match resume_point(Some(&text), after) {
            Ok(n) => {
                assert_eq!(text.trim().parse::<u64>().ok(), Some(n));
                assert_eq!(resume_point(Some(&n.to_string()), None).ok(), Some(n), "its own id reads back");
            }
            Err(_) => assert!(text.trim().parse::<u64>().is_err()),
        }

        if let Ok(id) = text.parse::<OperationId>() {
            let written = id.to_string();
            assert_eq!(written.parse::<OperationId>().ok(), Some(id), "{written}");
            assert_eq!(written, text.to_ascii_lowercase(), "one spelling but the hex digits' case");
        }
    });
}
