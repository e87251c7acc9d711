//! Dead letters: held tasks set aside, listed and paged, dropped, redriven;
//! a step given up on, kept with each attempt's error; and the events a
//! broker on a server of its own hands to the list.

use chrono::Utc;
use herald_core::{Command, OperationId, TaskKind, notify::Channel, task::Phase};
use serde_json::json;

use super::{Harness, answer, applied, create, failed, new_op, workflow};
use crate::{DeadLetter, DeadLetterFilter, DeadLetterKind, Store, Task};

pub(super) fn letter(kind: DeadLetterKind, workflow: &str, op: &OperationId, subscription: Option<&str>) -> DeadLetter {
    DeadLetter {
        id: 0,
        kind,
        subscription: subscription.map(Into::into),
        topic: None,
        workflow: Some(workflow.into()),
        operation_id: Some(op.clone()),
        step: None,
        attempts: 3,
        error: "gave up".into(),
        errors: vec![],
        payload: json!({ "to": "ann" }),
        created_at: Utc::now(),
    }
}

/// An operation of `workflow` and its step call, held by this node.
async fn held_task(store: &dyn Store, workflow_name: &str) -> Task {
    let made = create(store, new_op(&workflow(workflow_name, "", ""), None, None)).await;
    made.tasks.into_iter().find(|t| t.owned).expect("a task held by this node")
}

fn ids(letters: &[DeadLetter]) -> Vec<i64> {
    letters.iter().map(|d| d.id).collect()
}

pub async fn dead_letter_sets_a_held_task_aside_and_lists_filter_and_page(h: &impl Harness) {
    let store = h.store();
    let mut made = Vec::new();
    for (kind, wf, sub) in [
        (DeadLetterKind::Webhook, "orders", None),
        (DeadLetterKind::Email, "refunds", None),
        (DeadLetterKind::Event, "orders", Some("billing")),
    ] {
        let task = held_task(&*store, wf).await;
        let d = letter(kind, wf, &task.op, sub);
        assert!(store.dead_letter(task.id, d.clone()).await.unwrap());
        assert!(!store.dead_letter(task.id, d.clone()).await.unwrap(), "the task is gone: nothing to set aside");
        assert!(!store.finish_task(task.id).await.unwrap());
        made.push(d);
    }
    store.release().await.unwrap();
    assert!(store.claim_due(10).await.unwrap().is_empty(), "no task is left to run");
    let list = |f: DeadLetterFilter| {
        let store = store.clone();
        async move { store.dead_letters(DeadLetterFilter { limit: 10, ..f }).await.unwrap() }
    };

    let all = list(Default::default()).await;
    assert_eq!(all.len(), 3);
    assert!(all[0].id > all[1].id && all[1].id > all[2].id, "newest first");
    let stored = &all[2];
    assert_eq!(DeadLetter { id: 0, created_at: made[0].created_at, ..stored.clone() }, made[0], "kept as written");
    let email = list(DeadLetterFilter { kind: Some(DeadLetterKind::Email), ..Default::default() }).await;
    assert_eq!(ids(&email), [all[1].id]);
    let orders = list(DeadLetterFilter { workflow: Some("orders".into()), ..Default::default() }).await;
    assert_eq!(ids(&orders), [all[0].id, all[2].id]);
    let by_sub = list(DeadLetterFilter { subscription: Some("billing".into()), ..Default::default() }).await;
    assert_eq!(ids(&by_sub), [all[0].id]);
    let by_op = list(DeadLetterFilter { operation: made[1].operation_id.clone(), ..Default::default() }).await;
    assert_eq!(ids(&by_op), [all[1].id]);
    let first_page = store.dead_letters(DeadLetterFilter { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(ids(&first_page), [all[0].id, all[1].id]);
    let next = list(DeadLetterFilter { before: Some(all[1].id), ..Default::default() }).await;
    assert_eq!(ids(&next), [all[2].id], "the page after the previous one's last");

    assert_eq!(store.dead_letter_by_id(all[1].id).await.unwrap().as_ref(), Some(&all[1]));
    assert!(store.delete_dead_letter(all[1].id).await.unwrap());
    assert!(!store.delete_dead_letter(all[1].id).await.unwrap(), "dropped once");
    assert_eq!(store.dead_letter_by_id(all[1].id).await.unwrap(), None);
}

pub async fn redriving_a_dead_letter_turns_it_back_into_a_task_once(h: &impl Harness) {
    let store = h.store();
    let task = held_task(&*store, "w").await;
    store.dead_letter(task.id, letter(DeadLetterKind::Webhook, "w", &task.op, None)).await.unwrap();
    let id = store.dead_letters(DeadLetterFilter { limit: 10, ..Default::default() }).await.unwrap()[0].id;
    let kind = TaskKind::Deliver { channel: Channel::Webhook, attempt: 1, payload: json!({ "to": "ann" }) };

    let redriven = store.redrive_task(id, &task.op, kind.clone()).await.unwrap().expect("a task");
    let again = store.redrive_task(id, &task.op, kind.clone()).await.unwrap();

    assert_eq!((&redriven.op, &redriven.kind, redriven.owned), (&task.op, &kind, true), "due now: held here");
    assert!(redriven.due <= Utc::now());
    assert_eq!(store.dead_letter_by_id(id).await.unwrap(), None, "the letter went with it");
    assert!(again.is_none(), "the letter is gone: no second task");
    store.release().await.unwrap();
    let claimed = store.claim_due(10).await.unwrap();
    assert_eq!(claimed.iter().map(|t| t.id.row).collect::<Vec<_>>(), [redriven.id.row], "one task, stored");
}

pub async fn a_step_given_up_on_is_dead_lettered_with_each_attempt_until_redriven(h: &impl Harness) {
    let store = h.store();
    let wf = workflow("w", "", "retry = { attempts = 2, initial = \"1ms\", max = \"1ms\" }\non_failure = \"hold\"");
    let op = create(&*store, new_op(&wf, None, None)).await.op.id.clone();
    let step_letters = || {
        let (store, op) = (store.clone(), op.clone());
        async move {
            store.dead_letters(DeadLetterFilter { operation: Some(op), limit: 10, ..Default::default() }).await.unwrap()
        }
    };

    applied(&*store, &wf, &op, None, answer(1, failed("first"))).await;
    assert!(step_letters().await.is_empty(), "a retry is not a dead letter");
    let second = Command::AttemptStarted { step: "a".into(), attempt: 2, phase: Phase::Forward };
    applied(&*store, &wf, &op, None, second).await;
    let held = applied(&*store, &wf, &op, None, answer(2, failed("second"))).await;

    assert!(held.op.needs_attention);
    let letters = step_letters().await;
    assert_eq!(letters.len(), 1);
    let d = &letters[0];
    assert_eq!(
        (d.kind, d.step.as_deref(), d.workflow.as_deref(), d.attempts),
        (DeadLetterKind::Step, Some("a"), Some("w"), 2)
    );
    assert_eq!(d.error, "second");
    let history: Vec<_> = d.errors.iter().map(|e| (e.attempt, e.error.as_str())).collect();
    assert_eq!(history, [(1, "first"), (2, "second")], "every attempt's error, oldest first");
    assert_eq!(d.payload, json!({ "operation_id": op, "step": "a", "phase": "forward" }));

    applied(&*store, &wf, &op, None, Command::Redrive { step: "a".into(), phase: Phase::Forward }).await;
    assert!(step_letters().await.is_empty(), "redriven: the letter goes in the same commit");
}

pub async fn an_event_a_broker_gave_up_on_joins_the_one_list(h: &impl Harness) {
    use herald_broker::{CloudEvent, DeadEvent, DeadLetters};
    use herald_core::retry::AttemptError;

    let list = crate::EventDeadLetters(h.store());
    let dead = |sub: &str, id: &str| {
        let event = json!({"specversion": "1.0", "id": id, "source": "/shop", "type": "OrderPlaced", "data": {"n": 1}});
        let at = Utc::now();
        DeadEvent {
            subscription: sub.into(),
            topic: "orders".into(),
            attempts: 2,
            errors: vec![
                AttemptError { attempt: 1, at, error: "busy".into() },
                AttemptError { attempt: 2, at, error: "refused".into() },
            ],
            event: CloudEvent::from_json(event).unwrap(),
            at,
        }
    };
    for (sub, id) in [("billing", "e1"), ("audit", "e2"), ("billing", "e3")] {
        list.add(dead(sub, id)).await.unwrap();
    }

    assert_eq!((list.count("billing").await.unwrap(), list.count("nobody").await.unwrap()), (2, 0));
    let billing = list.list("billing").await.unwrap();
    let seen: Vec<_> = billing
        .iter()
        .map(|d| {
            (d.event.id.as_str(), d.topic.as_str(), d.attempts, d.errors.iter().map(|e| e.error.as_str()).collect())
        })
        .collect();
    let busy_refused: Vec<&str> = vec!["busy", "refused"];
    assert_eq!(seen, [("e1", "orders", 2, busy_refused.clone()), ("e3", "orders", 2, busy_refused)], "oldest first");
    assert_eq!(billing[0].event, dead("billing", "e1").event, "the event as published");
    let store = h.store();
    let filter = DeadLetterFilter { subscription: Some("billing".into()), limit: 10, ..Default::default() };
    let shown = store.dead_letters(filter).await.unwrap();
    assert_eq!(shown.len(), 2);
    assert_eq!(
        (shown[0].kind, shown[0].topic.as_deref(), shown[0].error.as_str()),
        (DeadLetterKind::Event, Some("orders"), "refused")
    );
    assert_eq!(shown[0].payload["id"], "e3", "newest first, the event as published");
    assert!(store.delete_dead_letter(shown[0].id).await.unwrap());
    assert_eq!(list.count("billing").await.unwrap(), 1, "dropped like any other");
}
