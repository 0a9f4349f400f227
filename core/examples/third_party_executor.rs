//! IPEP 19 in Rust: another runtime exposes its engine as a concur `Executor` by implementing
//! one method, and gets `submit`, `map` and futures that mix with everyone else's.
//!
//! Run: `cargo run -p concur-core --example third_party_executor`
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::thread::{self, JoinHandle};

use concur_core::{Executor, SubmitError, Task};

/// A toy "engine": a fixed set of threads fed through a channel (think IPython's engines).
struct Engines {
    jobs: Mutex<Option<Sender<Task>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Engines {
    fn start(count: usize) -> Self {
        let (tx, rx) = channel::<Task>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let threads = (0..count)
            .map(|_| {
                let rx = rx.clone();
                // The lock guard is dropped before the job runs, so engines work in parallel.
                let next_job = move || rx.lock().unwrap().recv().ok();
                thread::spawn(move || {
                    while let Some(task) = next_job() {
                        task.run()
                    }
                })
            })
            .collect();
        Engines {
            jobs: Mutex::new(Some(tx)),
            threads,
        }
    }

    /// Stops taking work and waits for the engines to drain the queue.
    fn shutdown(mut self) {
        self.jobs.lock().unwrap().take();
        self.threads.drain(..).for_each(|t| t.join().unwrap());
    }
}

// The whole integration: one method.
impl Executor for Engines {
    fn execute(&self, task: Task) -> Result<(), SubmitError> {
        let jobs = self.jobs.lock().unwrap();
        let sender = jobs.as_ref().ok_or(SubmitError::Shutdown)?;
        sender.send(task).map_err(|_| SubmitError::Shutdown)
    }
}

fn main() {
    let engines = Engines::start(2);
    let future = engines.submit(|| 323u64.pow(2)).unwrap(); // Python: executor.submit(pow, 323, 2)
    println!("submit: {}", future.result().unwrap());
    let cubes: Vec<u64> = engines
        .map(|x: u64| x * x * x, 1..=5)
        .map(Result::unwrap)
        .collect();
    println!("map:    {cubes:?}");
    engines.shutdown();
}
