//! Submitting, results, panics, codec errors, map.

use concur_process::{ProcessPool, TaskPanicked};

concur_process::test_worker!();

concur_process::task! {
    fn square(x: u64) -> u64 { x * x }
    fn add(a: i64, b: i64) -> i64 { a + b }
    fn boom(msg: String) -> u8 { panic!("{msg}") }
    fn pid() -> u32 { std::process::id() }
}

#[test]
fn submit_and_result() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let f = pool.submit(square, 12).unwrap();
    assert_eq!(*f.result().unwrap(), 144);
    let g = pool.submit(add, (2, -5)).unwrap();
    assert_eq!(*g.result().unwrap(), -3);
    let worker = *pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(worker, std::process::id());
}

#[test]
fn panic_comes_back_with_message_and_location() {
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let f = pool.submit(boom, "kaput".to_string()).unwrap();
    let failure = f.error().unwrap().unwrap();
    let panic = failure.downcast_ref::<TaskPanicked>().unwrap();
    assert_eq!(panic.message.as_deref(), Some("kaput"));
    assert!(
        panic.location.as_deref().unwrap().contains("basic.rs"),
        "{panic}"
    );
    // The worker survives.
    assert_eq!(*pool.submit(square, 3).unwrap().result().unwrap(), 9);
}

#[test]
fn map_in_order() {
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let got: Vec<u64> = pool.map(square, 0..100u64).map(Result::unwrap).collect();
    let want: Vec<u64> = (0..100u64).map(|x| x * x).collect();
    assert_eq!(got, want);
}
