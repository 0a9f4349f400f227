//! Every contender of every scenario runs a few operations and shuts down cleanly (no hang,
//! partner threads exit when their rally is dropped).

use concur_benches::affinity;
use concur_benches::contender::Scenario;
use concur_benches::scenarios::pingpong::rally::Placement;
use concur_benches::scenarios::{pingpong, same_thread};

fn smoke(scenario: &Scenario) {
    for contender in &scenario.contenders {
        let mut batch = contender.start();
        for _ in 0..3 {
            batch.run(50);
        }
    }
}

#[test]
fn same_thread_runs() {
    smoke(&same_thread::scenario());
}

#[test]
fn pingpong_runs() {
    smoke(&pingpong::scenario(pingpong::NAME, Placement::FREE));
}

#[test]
fn pingpong_pinned_runs() {
    if let Some(cpu) = affinity::first_allowed_cpu() {
        smoke(&pingpong::scenario(pingpong::PINNED, Placement::same(cpu)));
    }
}

#[test]
fn pingpong_split_runs() {
    if let Some((a, b)) = affinity::two_allowed_cpus() {
        smoke(&pingpong::scenario(pingpong::SPLIT, Placement::split(a, b)));
    }
}
