//! Criterion groups `core/<scenario>`: ours and the peers side by side, one group per scenario.
//!
//! ```text
//! cargo bench -p concur-benches --bench core
//! cargo bench -p concur-benches --bench core -- core/pingpong   # one group
//! ```

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use concur_benches::affinity;
use concur_benches::contender::Scenario;
use concur_benches::scenarios::pingpong::rally::Placement;
use concur_benches::scenarios::{pingpong, same_thread};
use criterion::{Criterion, criterion_group, criterion_main};

fn group(c: &mut Criterion, scenario: &Scenario) {
    let mut group = c.benchmark_group(format!("core/{}", scenario.name));
    for contender in &scenario.contenders {
        group.bench_function(contender.name, |b| {
            let mut batch = contender.start();
            b.iter_custom(|iters| batch.run(iters));
        });
    }
    group.finish();
}

fn core_same_thread(c: &mut Criterion) {
    group(c, &same_thread::scenario());
}

fn core_pingpong(c: &mut Criterion) {
    group(c, &pingpong::scenario(pingpong::NAME, Placement::FREE));
}

fn core_pingpong_pinned(c: &mut Criterion) {
    if let Some(cpu) = affinity::first_allowed_cpu() {
        group(
            c,
            &pingpong::scenario(pingpong::PINNED, Placement::same(cpu)),
        );
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn core_pingpong_split(c: &mut Criterion) {
    if let Some((a, b)) = affinity::two_allowed_cpus() {
        group(
            c,
            &pingpong::scenario(pingpong::SPLIT, Placement::split(a, b)),
        );
    }
}

criterion_group! {
    name = core;
    config = config();
    targets = core_same_thread, core_pingpong, core_pingpong_pinned, core_pingpong_split
}
criterion_main!(core);
