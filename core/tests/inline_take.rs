//! A future whose task was run inline by a waiter finishes while its queued `Task` still holds
//! the producer's share: moving the value out of the last handle must leave the cell to that
//! task (found by concur-pool's `into_result` inside a one-worker pool).

use concur_core::{Blocking, BlockingHook, Task, Verdict, with_blocking_hook};

struct Inline;

impl BlockingHook for Inline {
    fn before_block(&self, future: &Blocking<'_>) -> Verdict {
        future.run_inline();
        Verdict::Block
    }

    fn after_block(&self, _future: &Blocking<'_>) {}
}

#[test]
fn into_result_after_an_inline_run_leaves_the_cell_to_the_queued_task() {
    for release_first in [false, true] {
        let (task, future) = Task::new(|| vec![7u8; 16]);
        let value = with_blocking_hook(&Inline, || future.into_result().unwrap());
        assert_eq!(value, vec![7u8; 16]);
        if release_first {
            task.run(); // claimed already: only releases (and frees) the cell
        } else {
            drop(task);
        }
    }
}

#[test]
fn a_failure_moved_out_after_an_inline_run_is_dropped_once() {
    let (task, future) = Task::new(|| -> u8 { panic!("inline failure") });
    let error = with_blocking_hook(&Inline, || future.into_result().unwrap_err());
    assert_eq!(
        error.failure().unwrap().panic_message(),
        Some("inline failure")
    );
    task.run();
}
