//! Criterion groups `core/<scenario>`: ours and the peers side by side, one group per scenario.
//!
//! ```text
//! cargo bench -p concur-benches --bench core
//! cargo bench -p concur-benches --bench core -- core/pingpong   # one group
//! cargo bench -p concur-benches --bench core -- core/wait_any    # wait_any/1 .. wait_any/10000
//! ```

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use concur_benches::affinity;
use concur_benches::contender::Scenario;
use concur_benches::scenarios::pingpong::rally::Placement;
use concur_benches::scenarios::{as_completed, pingpong, same_thread, wait_any};
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

fn core_wait_any(c: &mut Criterion) {
    for n in wait_any::SIZES {
        group(c, &wait_any::wake_scenario(n));
    }
}

fn core_wait_register(c: &mut Criterion) {
    for n in wait_any::SIZES {
        group(c, &wait_any::register_scenario(n));
    }
}

/// Times whole calls over 100,000 done futures (divide by 100,000 for `compare`'s figure).
fn core_as_completed(c: &mut Criterion) {
    group(c, &as_completed::scenario(as_completed::FUTURES));
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
    targets = core_same_thread, core_pingpong, core_pingpong_pinned, core_pingpong_split,
        core_wait_any, core_wait_register, core_as_completed
}
criterion_main!(core);
