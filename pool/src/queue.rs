//! The pool's task queue: FIFO, unbounded, lock-free.
//!
//! A [`Task`] is one pointer to the allocation holding the work and its future's cell; the queue
//! stores those pointers in blocks of 31 (crossbeam's `SegQueue`), so a submit allocates only
//! its task plus, once per 31 submits, a queue block.

use concur_core::Task;
use crossbeam_queue::SegQueue;

/// FIFO queue of tasks, shared by submitters and workers.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    tasks: SegQueue<Task>,
}

impl Queue {
    pub(crate) fn push(&self, task: Task) {
        self.tasks.push(task);
    }

    pub(crate) fn pop(&self) -> Option<Task> {
        self.tasks.pop()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }
}
