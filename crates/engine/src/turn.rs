//! Waiting for a service's turn. Every call the engine makes (a step, a
//! compensation, a webhook, an email) is admitted by its service first
//! (`registry::admit`); while herald holds it back, the task waits in
//! memory — quietly for a moment, then, for a step, told once on the
//! timeline — and after a while goes back to the store to be picked up
//! later. No attempt is spent on a call that was not sent.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use herald_core::{Command, task::Phase};
use herald_store::Task;

use crate::Engine;
use herald_gateway::registry::{Lease, Service};

/// How long a call waits for its turn before its step shows that it waits:
/// a short wait behind the concurrency limit is not news to anyone.
const QUIET: Duration = Duration::from_secs(1);

/// How long a task waits in memory before going back to the store (well
/// inside its lease, so no other run takes it meanwhile).
const PATIENCE: Duration = Duration::from_secs(30);

/// How long to wait before trying again a call that could not connect.
pub(crate) const UNREACHABLE_RECHECK: Duration = Duration::from_secs(1);

/// The step attempt a task carries (shown waiting, begun, recorded).
#[derive(Clone, Copy)]
pub(crate) struct Attempt<'a> {
    pub task: &'a Task,
    pub step: &'a str,
    pub attempt: u32,
    pub phase: Phase,
}

/// What waiting for a turn came to.
pub(crate) enum Turn {
    /// Admitted; `told`: the step was shown waiting meanwhile, so its
    /// attempt begins anew.
    Go { lease: Lease, told: bool },
    /// Not now: the task is back in the store (or herald is stopping).
    Later,
}

impl Engine {
    /// Waits for `svc` to admit this task's call; the wait is counted for
    /// `/metrics`, however it ends.
    pub(crate) async fn turn(
        &self,
        svc: &Arc<Service>,
        task: &Task,
        attempt: Option<Attempt<'_>>,
    ) -> herald_store::Result<Turn> {
        let began = std::time::Instant::now();
        let turn = self.wait_turn(svc, task, attempt).await;
        svc.calls.waited(began.elapsed());
        turn
    }

    async fn wait_turn(
        &self,
        svc: &Arc<Service>,
        task: &Task,
        attempt: Option<Attempt<'_>>,
    ) -> herald_store::Result<Turn> {
        let stop = self.0.stopping.clone();
        let first = tokio::select! {
            r = svc.admit(QUIET) => r,
            _ = stop.cancelled() => return Ok(Turn::Later), // given back at shutdown
        };
        let refusal = match first {
            Ok(lease) => return Ok(Turn::Go { lease, told: false }),
            Err(r) => r,
        };
        tracing::debug!(task = %task.id, reason = %refusal.describe(&svc.name), "waiting for the service's turn");
        let told = match attempt {
            Some(a) => {
                self.wait_for(a, &svc.name).await?;
                true
            }
            None => false,
        };
        let second = tokio::select! {
            r = svc.admit(PATIENCE) => r,
            _ = stop.cancelled() => return Ok(Turn::Later),
        };
        match second {
            Ok(lease) => Ok(Turn::Go { lease, told }),
            Err(r) => {
                self.defer(task.clone(), r.retry_after()).await?;
                Ok(Turn::Later)
            }
        }
    }

    /// Shows the step waiting for `service` (once: a step already waiting
    /// is left as it is).
    pub(crate) async fn wait_for(&self, a: Attempt<'_>, service: &str) -> herald_store::Result<()> {
        let cmd =
            Command::Wait { step: a.step.to_string(), attempt: a.attempt, phase: a.phase, service: service.into() };
        self.apply(&a.task.op, None, cmd).await.map(drop)
    }

    /// Gives the task back to the store, to run again after `wait`, as it is.
    pub(crate) async fn defer(&self, task: Task, wait: Duration) -> herald_store::Result<()> {
        let due = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        if self.0.store.retry_task(task.id, task.kind.clone(), due).await? {
            self.schedule(Task { due, owned: false, ..task }, None);
        }
        Ok(())
    }
}
