//! The process-wide wait-for graph of the thread pools' running tasks: which task is blocked
//! on which futures, so that a wait that could never end is refused with
//! [`Error::Deadlock`](concur_core::Error::Deadlock) instead of hanging (DESIGN §4).
//!
//! One graph for every pool in the process, so a cycle through two pools (a task of pool A
//! waits on a task of pool B that waits on the first) is seen like one inside a pool.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use concur_core::Needs;

/// One blocked task's wait: the futures it waits on and whether it needs any one or all.
#[derive(Debug)]
struct Wait {
    needs: Needs,
    targets: Vec<usize>,
}

impl Wait {
    /// Whether this wait can never end if every task in `stuck` never finishes.
    fn cannot_end(&self, stuck: &BTreeSet<usize>) -> bool {
        let mut blocked = self.targets.iter().map(|t| stuck.contains(t));
        match self.needs {
            Needs::All => blocked.any(|b| b),
            Needs::Any => !self.targets.is_empty() && blocked.all(|b| b),
        }
    }
}

/// The graph: every task of every pool that is blocked in a wait its hook let block.
///
/// Invariant: no recorded task is deadlocked (a wait that would be is refused, recording
/// nothing). Ids are task/future cell addresses, alive while recorded: the waiter is running
/// and its targets are held by the waiter's handles. A task has at most one wait (a thread
/// blocks on one thing at a time, and a task run inline is a new task above its waiter, whose
/// wait names it).
///
/// A task *can never finish* when it is in the largest set of recorded tasks each of whose
/// waits cannot end given that set: an `All` wait that needs one of them, an `Any` wait whose
/// every target is one of them. A future that is no recorded task (a queued or running task
/// that is not blocked, a promise, a process pool's call, a future of another runtime) is
/// taken to finish, so a process pool's future is never part of a cycle: its worker is
/// another process and never waits on a thread pool's task.
#[derive(Debug, Default)]
pub(crate) struct WaitFor {
    waits: BTreeMap<usize, Wait>,
}

static GRAPH: Mutex<WaitFor> = Mutex::new(WaitFor {
    waits: BTreeMap::new(),
});

/// The process-wide graph.
pub(crate) fn graph() -> MutexGuard<'static, WaitFor> {
    GRAPH.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WaitFor {
    /// Records that task `waiter` blocks until `needs` of `targets` are done; returns false,
    /// recording nothing, if that wait could never end.
    pub(crate) fn block(&mut self, waiter: usize, needs: Needs, targets: Vec<usize>) -> bool {
        let wait = Wait { needs, targets };
        if self.would_never_end(waiter, &wait) {
            return false;
        }
        self.waits.insert(waiter, wait);
        true
    }

    /// Removes `waiter`'s wait: it ended.
    pub(crate) fn unblock(&mut self, waiter: usize) {
        self.waits.remove(&waiter);
    }

    /// Whether `waiter`, blocked in `wait`, is in the largest set of tasks that can never
    /// finish: start from every blocked task and drop, until none is left to drop, each one
    /// whose wait can end when only the rest never finish.
    fn would_never_end(&self, waiter: usize, wait: &Wait) -> bool {
        let wait_of = |task: usize| {
            if task == waiter {
                wait
            } else {
                &self.waits[&task]
            }
        };
        let mut stuck: BTreeSet<usize> = self.waits.keys().copied().collect();
        stuck.insert(waiter);
        loop {
            let can_end: Vec<usize> = stuck
                .iter()
                .copied()
                .filter(|&task| !wait_of(task).cannot_end(&stuck))
                .collect();
            if can_end.is_empty() {
                return stuck.contains(&waiter);
            }
            if can_end.contains(&waiter) {
                return false;
            }
            for task in can_end {
                stuck.remove(&task);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_any_wait_is_stuck_only_when_every_target_is() {
        let mut g = WaitFor::default();
        // 1 waits on any of {2, 3}; 2 waits on 1: 3 can still finish.
        assert!(g.block(1, Needs::Any, vec![2, 3]));
        assert!(g.block(2, Needs::All, vec![1]));
        // 3 now waits on 1: every target of 1 is stuck, and 3 closes the cycle.
        assert!(!g.block(3, Needs::All, vec![1]));
        // An any-wait that also names a future nobody blocks does not.
        g.unblock(2);
        assert!(g.block(2, Needs::Any, vec![1, 9]));
    }

    #[test]
    fn an_all_wait_is_stuck_when_any_target_is() {
        let mut g = WaitFor::default();
        assert!(g.block(1, Needs::All, vec![2]));
        assert!(!g.block(2, Needs::All, vec![7, 1]));
        assert!(g.block(2, Needs::Any, vec![7, 1]));
    }

    #[test]
    fn a_cycle_of_any_waits_through_a_third_task_is_seen() {
        let mut g = WaitFor::default();
        // 1 waits on any of {2, 3}; 3 waits on 1; 2 then waits on 1: all three are stuck.
        assert!(g.block(1, Needs::Any, vec![2, 3]));
        assert!(g.block(3, Needs::All, vec![1]));
        assert!(!g.block(2, Needs::All, vec![1]));
    }
}
