//! What waits, as `/metrics` reads it: late and held operations, due
//! tasks, dead letters by kind.

use chrono::{Duration, DurationRound, Utc};
use herald_core::{Command, machine::Outcome, task::Phase, task::Timer};
use serde_json::json;

use super::{Harness, answer, applied, create, dead_letters::letter, failed, new_op, workflow};
use crate::{DeadLetterKind, Flagged, Gauges, ListQuery};

pub async fn gauges_count_late_and_held_operations_due_tasks_and_dead_letters(h: &impl Harness) {
    let store = h.store();
    let before = Utc::now();
    assert_eq!(store.gauges(before).await.unwrap(), Gauges::default(), "a fresh store holds nothing");

    let late_wf = workflow("late", "expected_within = \"1h\"", "");
    let late = create(&*store, new_op(&late_wf, None, None)).await.op.id.clone();
    applied(&*store, &late_wf, &late, None, Command::Timer(Timer::OpExpected)).await;
    let held_wf =
        workflow("held", "", "retry = { attempts = 1, initial = \"1ms\", max = \"1ms\" }\non_failure = \"hold\"");
    let held = create(&*store, new_op(&held_wf, None, None)).await.op.id.clone();
    applied(&*store, &held_wf, &held, None, answer(1, failed("no"))).await;
    store.add_dead_letter(letter(DeadLetterKind::Webhook, "late", &late, None)).await.unwrap();

    let now = Utc::now();
    let g = store.gauges(now).await.unwrap();
    assert_eq!((g.delayed, g.needing_attention), (1, 1));
    // The same, listed for an operator.
    let flagged = |flag| {
        let store = store.clone();
        async move {
            let q = ListQuery { flagged: Some(flag), limit: 10, ..Default::default() };
            store.list(q).await.unwrap().into_iter().map(|op| op.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(flagged(Flagged::Late).await, std::slice::from_ref(&late));
    assert_eq!(flagged(Flagged::NeedsAttention).await, std::slice::from_ref(&held));

    assert_eq!(g.dead_letters, [("step".to_string(), 1), ("webhook".to_string(), 1)]);
    assert_eq!((g.due_tasks, g.oldest_due), (0, None), "both calls are held by this node, the timer is an hour off");
    let lapsed = store.gauges(now + Duration::minutes(11)).await.unwrap();
    assert_eq!(lapsed.due_tasks, 2, "past the node's 10-minute lease, its held calls are due again");
    let oldest = lapsed.oldest_due.expect("the first lease's end");
    assert!(oldest > now && oldest <= Utc::now() + Duration::minutes(10), "{oldest}");

    store.release().await.unwrap();
    let g = store.gauges(Utc::now()).await.unwrap();
    assert_eq!(g.due_tasks, 2, "given back, the calls are due at once");
    let oldest = g.oldest_due.expect("the first call's due time");
    // Stores keep times to the millisecond.
    let before = before.duration_trunc(Duration::milliseconds(1)).unwrap();
    assert!(oldest >= before && oldest <= now, "{oldest} not within {before}..={now}");

    // Finished, the late one is no longer delayed; redriven, the held one
    // no longer needs a person.
    applied(&*store, &late_wf, &late, None, answer(1, Outcome::Done(json!({})))).await;
    applied(&*store, &held_wf, &held, None, Command::Redrive { step: "a".into(), phase: Phase::Forward }).await;
    let g = store.gauges(Utc::now()).await.unwrap();
    assert_eq!((g.delayed, g.needing_attention), (0, 0));
    assert!(flagged(Flagged::Late).await.is_empty() && flagged(Flagged::NeedsAttention).await.is_empty());
    assert_eq!(store.list(ListQuery { limit: 10, ..Default::default() }).await.unwrap().len(), 2, "still there");
    assert_eq!(g.dead_letters, [("webhook".to_string(), 1)], "the step's letter went with its redrive");
}
