//! Retries (`ProcessPoolBuilder::retries`, off by default): the call a dying worker was running
//! runs again on the next free worker, up to `retries` more times, but only for a task
//! declared `#[idempotent]` (it may have run, in part or whole, on the dead worker). When every
//! attempt fails, the future's error lists each attempt's host and cause. Calls the worker had
//! not started are always requeued (`Io::settle`), retries or not.

use concur_core::Failure;

use crate::error::{AttemptsFailed, WorkerDied};
use crate::job::Job;
use crate::registry;

use super::Io;

impl Io {
    /// Fails `head`, whose worker died under it, or hands it back for another attempt.
    pub(super) fn retry_or_fail(
        &mut self,
        head: Job,
        died: WorkerDied,
        stopping: bool,
    ) -> Option<Job> {
        let idempotent = registry::lookup(head.name).is_some_and(|entry| entry.idempotent);
        if self.config.retries == 0 || !idempotent {
            head.completion.fail(Failure::from_error(died));
            return None;
        }
        let attempts = self.attempts.entry(head.id).or_default();
        attempts.push(died);
        if attempts.len() > self.config.retries as usize || stopping {
            let attempts = self.attempts.remove(&head.id).unwrap_or_default();
            head.completion
                .fail(Failure::from_error(AttemptsFailed { attempts }));
            return None;
        }
        Some(head)
    }
}
