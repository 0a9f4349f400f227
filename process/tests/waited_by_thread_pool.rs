//! A thread-pool task waiting on process-pool futures: a process future is never part of a
//! wait-for cycle (its worker is another process and never waits on a thread-pool task), so
//! the thread pool's deadlock detection must not report one, for single- and multi-future
//! waits alike.

use concur_core::{Error, ReturnWhen, as_completed, wait};
use concur_pool::ThreadPool;
use concur_process::ProcessPool;

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
}

#[test]
fn a_thread_pool_task_waiting_on_process_futures_never_sees_a_deadlock() {
    let processes = ProcessPool::builder().max_workers(2).build().unwrap();
    let threads = ThreadPool::new(2).unwrap();
    let seen = threads
        .submit(move || {
            let single = processes.submit(square, 3).unwrap();
            let single: Result<u64, Error> = single.result().copied();
            let many: Vec<_> = (0..4u64)
                .map(|i| processes.submit(square, i).unwrap())
                .collect();
            let all = wait(&many, None, ReturnWhen::AllCompleted);
            let first = wait(&many, None, ReturnWhen::FirstCompleted);
            let more: Vec<_> = (4..8u64)
                .map(|i| processes.submit(square, i).unwrap())
                .collect();
            let streamed: Result<Vec<u64>, _> = as_completed(&more, None)
                .map(|f| f.map(|f| *f.result().unwrap()))
                .collect();
            (
                single,
                !all.is_deadlock() && all.not_done().is_empty(),
                !first.is_deadlock() && !first.done().is_empty(),
                streamed.map(|mut v| {
                    v.sort_unstable();
                    v
                }),
            )
        })
        .unwrap();
    let (single, all, first, streamed) = seen.result().unwrap();
    assert_eq!(*single.as_ref().unwrap(), 9);
    assert!(*all && *first);
    assert_eq!(streamed.as_ref().unwrap(), &[16, 25, 36, 49]);
}
