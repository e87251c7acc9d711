//! The conditions of a filtered list, written once for the SQL backends:
//! each is a column test (`"workflow ="`) and the value bound after it;
//! a backend joins them with `AND` in its own placeholders.

use crate::{DeadLetterFilter, ListQuery};

/// A value bound to a filter.
pub enum Arg {
    Text(String),
    Int(i64),
}

pub type Filters = Vec<(&'static str, Arg)>;

/// The most rows one page answers.
pub const MAX_PAGE: usize = 1000;

/// An operation list's conditions; newest (highest id) first, `before` a cursor.
pub fn operations(q: &ListQuery) -> Filters {
    let mut f = Filters::new();
    if let Some(s) = &q.subject {
        f.push(("subject =", Arg::Text(s.clone())));
    }
    if let Some(w) = &q.workflow {
        f.push(("workflow =", Arg::Text(w.clone())));
    }
    if let Some(s) = q.status {
        f.push(("status =", Arg::Text(s.as_str().into())));
    }
    if let Some(b) = &q.before {
        f.push(("id <", Arg::Text(b.to_string())));
    }
    if let Some(flag) = q.flagged {
        // `flags <> 0` is the partial index's own condition: it is used.
        f.push(("flags <>", Arg::Int(0)));
        f.push(match flag {
            crate::Flagged::Late => ("flags & 1 =", Arg::Int(1)),
            crate::Flagged::NeedsAttention => ("flags & 2 =", Arg::Int(2)),
        });
    }
    f
}

/// A dead-letter list's conditions.
pub fn dead_letters(q: &DeadLetterFilter) -> Filters {
    let mut f = Filters::new();
    if let Some(k) = q.kind {
        f.push(("kind =", Arg::Text(k.as_str().into())));
    }
    if let Some(s) = &q.subscription {
        f.push(("subscription =", Arg::Text(s.clone())));
    }
    if let Some(w) = &q.workflow {
        f.push(("workflow =", Arg::Text(w.clone())));
    }
    if let Some(o) = &q.operation {
        f.push(("op_id =", Arg::Text(o.to_string())));
    }
    if let Some(b) = q.before {
        f.push(("id <", Arg::Int(b)));
    }
    f
}

/// A page's size as a `LIMIT`: at least one row, at most [`MAX_PAGE`].
pub fn page(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}
