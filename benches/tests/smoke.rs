//! Every contender of every scenario runs a few operations and shuts down cleanly (no hang,
//! partner threads exit when their rally or wait is dropped, pools shut down), and the CPython
//! peer's script prints what `compare` reads.

use std::time::Duration;

use concur_benches::contender::Scenario;
use concur_benches::latency::Recorder;
use concur_benches::scenarios::pingpong::rally::Placement;
use concur_benches::scenarios::{
    as_completed, pingpong, pool, process, process_spaced, same_thread, wait_any,
};
use concur_benches::{affinity, python};

// The process-pool scenarios' workers are this test binary re-run.
concur_process::test_worker!();

fn smoke(scenario: &Scenario) {
    for contender in &scenario.contenders {
        let mut batch = contender.start();
        for _ in 0..3 {
            batch.run(50);
        }
        // A contender that times single calls records each one.
        let mut calls = Recorder::new();
        if batch.run_recorded(50, &mut calls).is_some() {
            assert_eq!(calls.finish().calls(), 50, "{}", contender.name);
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

#[test]
fn wait_any_runs() {
    for n in [1, 16, 1_024] {
        smoke(&wait_any::wake_scenario(n));
    }
}

#[test]
fn wait_register_runs() {
    for n in [1, 16, 1_024] {
        smoke(&wait_any::register_scenario(n));
    }
}

#[test]
fn as_completed_runs() {
    smoke(&as_completed::scenario(1_000));
}

#[test]
fn pool_round_trip_runs() {
    smoke(&pool::round_trip_scenario());
}

#[test]
fn pool_throughput_runs() {
    // One batch each: 100,000 tasks per contender is plenty for a debug build.
    for contender in &pool::throughput_scenario().contenders {
        contender.start().run(1);
    }
}

#[test]
fn process_scenarios_run() {
    // `echo` without arguments stands in for compare's spawn floor child: it writes one byte.
    let startup = process::startup(2, Some(std::path::Path::new("/bin/echo")));
    let names: Vec<&str> = startup.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ours/submit",
            process::SPAWN_FLOOR,
            process::SPAWN_FLOOR_HELLO
        ],
        "ours, the spawn floor and the smallest Rust program's (built by build.rs)"
    );
    assert!(startup.iter().all(|m| m.ns > 0.0));
    // `cat` stands in for compare's echo child: it copies each frame as it arrives.
    let cat = vec!["cat".into()];
    smoke(&process::round_trip_scenario(Some(cat)));
    for chunksize in [1, 1000] {
        for contender in &process::map_scenario(chunksize, 2_000).contenders {
            contender.start().run(1);
        }
    }
    assert!(process::death_to_error(2)[0].ns > 0.0);
    if let Some(spaced) = process_spaced::spaced_cpu(1, Some(vec!["cat".into()])) {
        assert_eq!(spaced.len(), 2, "ours and the raw pipe");
        // Each call costs the other process some CPU.
        assert!(spaced.iter().all(|m| m.ns > 0.0), "{spaced:?}");
    }
}

#[test]
fn idle_pool_is_measured() {
    if let Some(idle) = pool::idle_cpu(Duration::from_millis(10), Duration::from_millis(50)) {
        // Workers start lazily; 10,000 tasks almost always start both, but a slow machine
        // may drain them with one.
        assert!((1..=pool::WORKERS).contains(&idle.workers), "{idle:?}");
        assert!(idle.percent() >= 0.0);
    }
}

/// The CPython script runs and prints a figure for every scenario `compare` joins it to (or
/// python3 is missing, which `compare` reports as a skip).
#[test]
fn python_peer_prints_every_figure() {
    let run = python::Run {
        quick: true,
        smoke: true,
        limit: Duration::from_secs(120),
    };
    let groups = [
        "wait_any",
        "wait_register",
        "as_completed",
        "pool",
        "process",
    ];
    match python::measure(&groups, run) {
        Ok(figures) => {
            let mut expected: Vec<&str> = wait_any::SIZES
                .iter()
                .flat_map(|&n| [wait_any::wake_name(n), wait_any::register_name(n)])
                .collect();
            expected.extend([as_completed::NAME, pool::ROUND_TRIP, pool::THROUGHPUT]);
            expected.extend(process::ALL);
            for scenario in expected {
                let figure = figures
                    .iter()
                    .find(|f| f.scenario == scenario)
                    .unwrap_or_else(|| panic!("no CPython figure for {scenario}"));
                assert_eq!(figure.measured.name, python::PEER);
                assert!(figure.measured.ns > 0.0, "{scenario}: {figure:?}");
            }
        }
        Err(why) if why.contains("cannot run") => eprintln!("python3 missing: {why}"),
        Err(why) => panic!("the CPython peer failed: {why}"),
    }
}
