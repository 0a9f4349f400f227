//! Criterion groups `pool/<scenario>`: the thread pool and its peers side by side.
//!
//! ```text
//! cargo bench -p concur-benches --bench pool
//! cargo bench -p concur-benches --bench pool -- pool/round_trip   # one group
//! ```
//!
//! `pool/throughput_100k` times whole batches of 100,000 tasks (divide by 100,000 for the
//! per-task figure `compare` prints).

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use concur_benches::contender::Scenario;
use concur_benches::scenarios::pool;
use criterion::{Criterion, criterion_group, criterion_main};

fn group(c: &mut Criterion, scenario: &Scenario) {
    let mut group = c.benchmark_group(scenario.name);
    for contender in &scenario.contenders {
        group.bench_function(contender.name, |b| {
            let mut batch = contender.start();
            b.iter_custom(|iters| batch.run(iters));
        });
    }
    group.finish();
}

fn pool_round_trip(c: &mut Criterion) {
    group(c, &pool::round_trip_scenario());
}

fn pool_throughput(c: &mut Criterion) {
    group(c, &pool::throughput_scenario());
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn throughput_config() -> Criterion {
    // A batch takes tens of milliseconds: fewer, longer samples.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = round_trip;
    config = config();
    targets = pool_round_trip
}
criterion_group! {
    name = throughput;
    config = throughput_config();
    targets = pool_throughput
}
criterion_main!(round_trip, throughput);
