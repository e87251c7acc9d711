//! The tests every [`Store`] backend must pass, as functions of a harness
//! and a macro that makes them a backend's test module:
//!
//! ```ignore
//! herald_store::contract_tests!(async { MyHarness::new().await });
//! ```
//!
//! where the harness implements [`Harness`]: a fresh, empty store running
//! as [`node()`], and a way to spoil one stored row. Operations are made
//! and moved by `herald-core`'s state machine, as the engine does.
//!
//! - [`accept`] — idempotency keys, and reject / queue / supersede.
//! - [`tasks`] — transitions and the tasks they consume, claims, leases,
//!   timers.
//! - [`reads`] — timelines, lists and their cursors, unreadable rows.
//! - [`inbox`] — notification pages, unread counts, marking read.
//! - [`dead_letters`] — held tasks set aside, lists, redrives, held steps.
//! - [`instances`] — registered service instances: renewed, changed,
//!   expired, deleted.
//! - [`gauges`] — what waits, as `/metrics` reads it.
//! - [`ledger`] — what a broker on a server of its own keeps here: seqs,
//!   publish dedupe, subscription definitions.
//! - [`postgres`] — a PostgreSQL schema of a test's own.

pub mod accept;
pub mod dead_letters;
pub mod gauges;
pub mod inbox;
pub mod instances;
pub mod ledger;
pub mod postgres;
pub mod reads;
pub mod tasks;

pub use accept::*;
pub use dead_letters::*;
pub use gauges::*;
pub use inbox::*;
pub use instances::*;
pub use ledger::*;
pub use reads::*;
pub use tasks::*;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::Utc;
use herald_core::{
    Command, Operation, OperationId, Workflow, machine,
    machine::Outcome,
    task::Phase,
    workflow::{self, OnConflict},
};
use serde_json::json;

use crate::{Accepted, Applied, NewOperation, Node, Store, SupersedeFn, TaskId, TransitionResult};

pub trait Harness: Send + Sync + 'static {
    /// The store under test: fresh and empty, running as [`node()`].
    fn store(&self) -> Arc<dyn Store>;

    /// Spoils one stored operation, as a broken disk might, so that its
    /// state can no longer be read back.
    fn corrupt_operation(&self, id: &OperationId) -> impl Future<Output = ()> + Send;
}

/// The node a harness's store runs as. Its lease outlasts any test, so a
/// held task stays held.
pub fn node() -> Node {
    Node { id: "contract".into(), lease: chrono::Duration::minutes(10) }
}

/// Makes one `#[tokio::test]` per contract test, each on a fresh harness.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@tests $make;
            a_replayed_idempotency_key_answers_what_its_first_request_made,
            reject_refuses_a_second_operation_with_the_key_naming_the_first,
            queue_puts_a_new_operation_behind_the_last_and_starts_it_when_the_head_ends,
            supersede_cancels_the_older_operations_in_the_same_accept,
            a_superseding_operation_waits_until_the_older_one_has_wound_down,
            ask_holds_a_new_operation_for_its_users_choice_and_it_holds_the_line,
            replacing_supersedes_the_others_in_the_same_transaction_and_starts_once_they_end,
            a_transition_whose_task_this_node_no_longer_holds_changes_nothing,
            a_refused_transition_keeps_its_task_and_writes_nothing,
            transitions_at_once_each_apply_or_are_refused_as_alone,
            claim_due_leases_free_due_tasks_once_and_release_gives_them_back,
            a_task_due_later_is_claimed_only_once_it_is_due,
            a_task_claimed_again_by_the_same_node_fences_the_earlier_claims_token,
            events_come_after_a_sequence_oldest_first_up_to_a_limit,
            lists_are_newest_first_filtered_and_paged_by_cursor,
            a_list_leaves_out_an_operation_it_cannot_read,
            inbox_pages_go_newest_first_before_a_version_and_oldest_first_after_one,
            marking_read_answers_each_change_with_the_unread_count,
            dead_letter_sets_a_held_task_aside_and_lists_filter_and_page,
            redriving_a_dead_letter_turns_it_back_into_a_task_once,
            a_step_given_up_on_is_dead_lettered_with_each_attempt_until_redriven,
            an_event_a_broker_gave_up_on_joins_the_one_list,
            gauges_count_late_and_held_operations_due_tasks_and_dead_letters,
            a_registered_instance_is_listed_as_stored_until_it_expires,
            a_heartbeat_renews_one_row_and_a_new_url_changes_it,
            a_deleted_instance_is_gone_and_pruning_drops_only_expired_ones,
            claims_take_seqs_that_grow_in_claim_order_and_only_a_confirmed_publish_makes_a_duplicate,
            a_batchs_second_copy_is_a_duplicate_and_a_redrive_never_is,
            the_first_confirmed_copy_stays_and_is_forgotten_after_its_window,
            claims_at_once_never_share_a_seq,
            definitions_are_put_read_listed_deleted_and_their_names_kept,
            a_dropped_scope_keeps_nothing_and_others_keep_theirs,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let harness = $make.await;
                $crate::contract::$name(&harness).await;
            }
        )*
    };
}

/// A workflow of one step `a`; `top` and `step` add lines to the file and
/// to the step.
pub fn workflow(name: &str, top: &str, step: &str) -> Arc<Workflow> {
    let toml = format!(
        "name = \"{name}\"\n{top}\n[[steps]]\nname = \"a\"\ncall = {{ service = \"svc\", path = \"/a\" }}\n{step}\n"
    );
    Arc::new(workflow::from_toml(&toml).expect("a valid workflow"))
}

/// The lines that give a workflow a concurrency policy, keyed by subject.
pub fn concurrency(on_conflict: &str) -> String {
    format!("subject = \"/user\"\nconcurrency = {{ key = \"subject\", on_conflict = \"{on_conflict}\" }}")
}

/// Ids in the order they are made, even within one millisecond (random
/// ones need not be): the tests' lines and pages follow that order.
fn next_id() -> OperationId {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let n = MADE.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    let mut random = [0; 10];
    random[3..].copy_from_slice(&n[1..]); // the bytes a UUIDv7 keeps whole
    OperationId::new(Utc::now(), random)
}

/// A new operation of `wf`, as the API makes one.
pub fn new_op(wf: &Arc<Workflow>, subject: Option<&str>, key: Option<&str>) -> NewOperation {
    let now = Utc::now();
    let (op, transition) = machine::accept(
        wf,
        next_id(),
        json!({}),
        subject.map(Into::into),
        key.map(Into::into),
        &Default::default(),
        now,
    );
    let on_conflict = wf.concurrency.as_ref().map(|c| c.on_conflict);
    let supersede = (on_conflict == Some(OnConflict::Supersede)).then(|| {
        let (wf, by) = (wf.clone(), op.id.clone());
        Arc::new(move |older: &mut Operation| {
            machine::apply(older, &wf, Command::Supersede { by: by.clone() }, now).unwrap_or_default()
        }) as SupersedeFn
    });
    NewOperation { op, transition, idempotency: None, workflow: wf.clone(), supersede }
}

/// Accepts an operation that must be created.
pub async fn create(store: &dyn Store, new: NewOperation) -> Applied {
    match store.accept(new).await.expect("accept") {
        Accepted::Created(a) => a,
        other => panic!("expected a new operation, got {other:?}"),
    }
}

/// Applies `cmd` to the stored operation, consuming `task`.
pub async fn apply(
    store: &dyn Store,
    wf: &Arc<Workflow>,
    id: &OperationId,
    task: Option<TaskId>,
    cmd: Command,
) -> TransitionResult {
    let wf = wf.clone();
    let f = Box::new(move |op: &mut Operation| machine::apply(op, &wf, cmd.clone(), Utc::now()));
    store.transition(id, task, f).await.expect("transition")
}

/// Like [`apply`], for a transition that must apply.
pub async fn applied(
    store: &dyn Store,
    wf: &Arc<Workflow>,
    id: &OperationId,
    task: Option<TaskId>,
    cmd: Command,
) -> Applied {
    match apply(store, wf, id, task, cmd).await {
        TransitionResult::Applied(a) => a,
        other => panic!("expected the transition to apply, got {other:?}"),
    }
}

pub fn cancel() -> Command {
    Command::Cancel { reason: "contract".into() }
}

/// Step `a`'s answer to `attempt`.
pub fn answer(attempt: u32, outcome: Outcome) -> Command {
    Command::Result { step: "a".into(), attempt, phase: Phase::Forward, outcome, sample: 0.5 }
}

pub fn failed(error: &str) -> Outcome {
    Outcome::Failed { error: error.into(), retryable: true, maybe_applied: false, retry_after: None }
}

/// What `store` claims as soon as anything is due (waiting ten seconds at
/// most: then nothing).
pub async fn claim_when_due(store: &dyn Store) -> Vec<crate::Task> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let claimed = store.claim_due(10).await.expect("claim_due");
        if !claimed.is_empty() || tokio::time::Instant::now() > deadline {
            return claimed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The stored operation, which must be there and readable.
pub async fn get(store: &dyn Store, id: &OperationId) -> Operation {
    store.get(id).await.expect("get").expect("the operation is stored")
}
