//! `compare`: ours against each peer, interleaved in one run, with the budgets judged.
//!
//! ```text
//! cargo run --release -p concur-benches --bin compare -- [--quick] [--only SCENARIO[,SCENARIO]] [--cdf FILE]
//! ```
//!
//! Results go to stdout (see `concur_benches::report`); progress and per-contender details to
//! stderr. A missed budget is reported, never an error. Scenarios: `same_thread`, `pingpong`,
//! `pingpong_pinned` (both threads pinned to one CPU), `pingpong_split` (each thread on its own
//! CPU), `pingpong_1cpu` (run in a child process restricted to one CPU before anything else
//! runs), `wait_any/N` and `wait_register/N` (N = 1, 16, 1024, 10000), `as_completed`,
//! `pool/round_trip`, `pool/round_trip_runs` (the same calls under issue 13's protocol: each
//! pool alone, 2,000 warm-up calls, 3 runs of 20,000, every run's percentiles as `run` rows),
//! `pool/throughput_100k`, `pool/idle_cpu`, and the process pool's
//! `process/startup` (with two floors: this binary and the smallest Rust program, each spawned
//! to its first byte), `process/round_trip` (with the `raw_pipe` floor: this binary re-run as
//! `--child process/raw_pipe`, echoing 64-byte frames), `process/map/1`, `process/map/1000`
//! and `process/death_to_error`. `--only` takes scenario names or their groups (`wait_any`,
//! `wait_register`, `pool`, `process`).
//!
//! The pingpong placements, `pool/round_trip`, the `process/round_trip` placements and
//! `wait_any/N` time every call of their slices as well: their percentiles, ratios and block
//! means are the `latency`, `latency_ratio` and `blocks` rows (see `concur_benches::report`),
//! and `--cdf FILE` writes their CDFs for `plot.py --cdf FILE`.
//!
//! Process pools start their workers by running this binary again, so `main` calls
//! [`concur_process::worker_main`] before anything else.
//!
//! The CPython peer (`python/peers.py`, run with `python3` or `$CONCUR_PYTHON`) joins the
//! `wait_any`, `wait_register`, `as_completed`, `pool` and `process` scenarios as `cpython`; without
//! python3, or with `--no-python`, a `skip` line says so:
//!
//! ```text
//! skip<TAB>cpython<TAB>reason
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use concur_benches::alloc_count::{self, Counting};
use concur_benches::budget::{self, ScenarioResult};
use concur_benches::measure::Measured;
use concur_benches::measure::{self, Plan};
use concur_benches::scenarios::pingpong::rally::Placement;
use concur_benches::scenarios::{
    as_completed, pingpong, pool, process, process_spaced, same_thread, wait_any,
};
use concur_benches::{affinity, footprint, line_trip, others, procfs, python, report, runs};

#[global_allocator]
static GLOBAL: Counting = Counting;

const CHILD: &str = "--child";

struct Options {
    quick: bool,
    python: bool,
    only: Option<Vec<String>>,
    child: Option<String>,
    /// Where to write the latency CDFs.
    cdf: Option<std::path::PathBuf>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Options {
            quick: false,
            python: true,
            only: None,
            child: None,
            cdf: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--no-python" => options.python = false,
                "--only" => {
                    let list = args.next().ok_or("--only needs a scenario list")?;
                    options.only = Some(list.split(',').map(str::to_string).collect());
                }
                "--cdf" => options.cdf = Some(args.next().ok_or("--cdf needs a file")?.into()),
                CHILD => options.child = Some(args.next().ok_or("--child needs a scenario")?),
                "--bench" => {} // passed by `cargo bench`; harmless here
                "-h" | "--help" => {
                    return Err(
                        "usage: compare [--quick] [--no-python] [--only SCENARIO_OR_GROUP[,...]] [--cdf FILE]\n\
                         scenarios: same_thread pingpong pingpong_pinned pingpong_split pingpong_1cpu \
                         wait_any/{1,16,1024,10000} wait_register/{1,16,1024,10000} as_completed \
                         pool/round_trip pool/round_trip_runs pool/throughput_100k pool/idle_cpu \
                         process/startup process/round_trip process/round_trip_1cpu \
                         process/round_trip_split \
                         process/map/1 process/map/1000 \
                         process/death_to_error process/spaced_cpu\n\
                         groups: wait_any wait_register pool process"
                            .into(),
                    );
                }
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        Ok(options)
    }

    fn plan(&self) -> Plan {
        if self.quick { Plan::QUICK } else { Plan::FULL }
    }

    fn protocol(&self) -> runs::Protocol {
        if self.quick {
            runs::Protocol::QUICK
        } else {
            runs::Protocol::FULL
        }
    }

    /// Whether `scenario` was asked for, by its name or its group (the part before `/`).
    fn wants(&self, scenario: &str) -> bool {
        let group = scenario.split('/').next().unwrap_or(scenario);
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|s| s == scenario || s == group))
    }

    fn wants_any(&self, scenarios: &[&str]) -> bool {
        scenarios.iter().any(|s| self.wants(s))
    }
}

fn main() -> ExitCode {
    // The start-up floor's child: before anything else, so that it measures a spawn alone.
    if std::env::var_os(process::SPAWN_FLOOR_ENV).is_some() {
        process::spawn_floor_child();
        return ExitCode::SUCCESS;
    }
    // In a process pool's worker (this binary re-run): serves tasks and never returns.
    concur_process::worker_main();
    let options = match Options::parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match &options.child {
        Some(name) if name == pingpong::ONE_CPU => one_cpu_child(options.plan(), &|| {
            pingpong::scenario(pingpong::ONE_CPU, Placement::FREE)
        }),
        Some(name) if name == process::ROUND_TRIP_1CPU => one_cpu_child(options.plan(), &|| {
            process::round_trip_scenario(echo_command())
        }),
        Some(name) if name == process::ECHO_CHILD => {
            process::echo();
            ExitCode::SUCCESS
        }
        Some(name) => {
            eprintln!("compare: no child scenario {name:?}");
            ExitCode::from(2)
        }
        None => {
            parent(&options);
            ExitCode::SUCCESS
        }
    }
}

fn parent(options: &Options) {
    let plan = options.plan();
    let started = Instant::now();
    watchdog::start(if options.quick {
        Duration::from_secs(45)
    } else {
        Duration::from_secs(300)
    });
    let cpu = affinity::first_allowed_cpu();
    describe_machine(plan);
    eprintln!(
        "compare: {} rounds x {:?} slices; CPUs allowed: {}; available_parallelism: {}",
        plan.rounds,
        plan.slice,
        affinity::allowed_cpu_count().map_or("unknown".into(), |n| n.to_string()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let footprints = if alloc_count::installed() {
        footprint::same_thread(10_000)
    } else {
        Vec::new()
    };
    for f in &footprints {
        eprintln!(
            "  allocations  {:<18} {:.2} allocs, {:.2} frees, {:.1} bytes per create+complete+get",
            f.name, f.allocs, f.frees, f.bytes
        );
    }
    if alloc_count::installed() {
        for n in [16, 10_000] {
            for (call, a) in footprint::wait_calls(n) {
                eprintln!(
                    "  allocations  {call:<18} {} allocs, {} frees, {} bytes per call over {n} pending futures",
                    a.allocs, a.frees, a.bytes
                );
            }
        }
    }
    for (ty, size) in footprint::handle_sizes() {
        eprintln!("  size_of      {ty:<18} {size} bytes");
    }

    let mut results = Vec::new();
    let mut run = |name: &'static str,
                   scenario: &dyn Fn() -> concur_benches::contender::Scenario| {
        measure_into(&mut results, options, name, plan, scenario, |m| m);
    };
    run(same_thread::NAME, &same_thread::scenario);
    run(pingpong::NAME, &|| {
        pingpong::scenario(pingpong::NAME, Placement::FREE)
    });
    match cpu {
        Some(cpu) => run(pingpong::PINNED, &|| {
            pingpong::scenario(pingpong::PINNED, Placement::same(cpu))
        }),
        None => eprintln!(
            "compare: CPU pinning unsupported here; skipping {}",
            pingpong::PINNED
        ),
    }
    match affinity::two_allowed_cpus() {
        Some((a, b)) => run(pingpong::SPLIT, &|| {
            pingpong::scenario(pingpong::SPLIT, Placement::split(a, b))
        }),
        None => eprintln!(
            "compare: fewer than two CPUs to pin to; skipping {}",
            pingpong::SPLIT
        ),
    }
    one_cpu_into(&mut results, options, pingpong::ONE_CPU);

    let mut python = PythonPeer::new(options);
    wait_scenarios(options, plan, &mut results, &mut python);
    let idle = pool_scenarios(options, plan, &mut results, &mut python);
    process_scenarios(options, plan, &mut results, &mut python);

    for result in &results {
        print!("{}", report::rows(result));
    }
    println!(
        "# latency rows: per call, ns: scenario, contender, calls, median of slices, p50, p90, p99, p99.9, max; latency_ratio: ours / peer of each; blocks: means of {} consecutive calls, best, worst, worst / best",
        concur_benches::latency::BLOCK
    );
    for result in &results {
        print!("{}", report::latency_rows(result));
    }
    if let Some(path) = &options.cdf {
        let cdf: String = results.iter().map(report::cdf_lines).collect();
        if let Err(e) = std::fs::write(path, cdf) {
            eprintln!("compare: cannot write {}: {e}", path.display());
        }
    }
    for line in OTHERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        println!("# {line}");
    }
    for why in &python.skipped {
        println!("skip\t{}\t{why}", python::PEER);
    }
    print!(
        "{}",
        report::verdicts(&budget::judge(&results, &footprints, idle.as_ref()))
    );
    println!("# {}", line_trip_text("at the end"));
    println!(
        "# done in {:.1} s; load average at the end: {}",
        started.elapsed().as_secs_f64(),
        procfs::load_average().unwrap_or_else(|| "unknown".into())
    );
    eprintln!("compare: done in {:.1} s", started.elapsed().as_secs_f64());
}

/// `#` lines heading the output: the command, the plan and the machine.
fn describe_machine(plan: Plan) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        println!("# compare (no arguments: the full plan, every scenario)");
    } else {
        println!("# compare {}", args.join(" "));
    }
    println!(
        "# plan: {} rounds x {:?} slices, interleaved; figures are medians in ns per operation",
        plan.rounds, plan.slice
    );
    println!(
        "# machine: nproc {} ({} CPUs allowed); CPU {}; load average at the start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        affinity::allowed_cpu_count().map_or("unknown".into(), |n| n.to_string()),
        procfs::cpu_model().unwrap_or_else(|| "unknown".into()),
        procfs::load_average().unwrap_or_else(|| "unknown".into()),
    );
    println!("# {}", line_trip_text("at the start"));
    println!("# columns: scenario, peer, ours_ns, peer_ns, ratio (ours / peer, lower is better)");
}

/// The machine's cache-line round trip between its CPUs (see `concur_benches::line_trip`), as
/// a `#` line's text.
fn line_trip_text(when: &str) -> String {
    match line_trip::measure() {
        Some(trip) => format!(
            "cache-line round trip between two CPUs {when}: {} ns (60-120 ns is this VM's usual; at 300-700 ns every cross-thread scenario is slower)",
            trip.as_nanos()
        ),
        None => format!("cache-line round trip {when}: not measured (fewer than two CPUs)"),
    }
}

/// Measures `scenario` (if asked for) into `results`, its figures passed through `adjust`
/// (per call to per item, say). A contender that panics skips the scenario with a line
/// saying so; the rest of the run goes on.
fn measure_into(
    results: &mut Vec<ScenarioResult>,
    options: &Options,
    name: &'static str,
    plan: Plan,
    scenario: &dyn Fn() -> concur_benches::contender::Scenario,
    adjust: impl FnOnce(Vec<Measured>) -> Vec<Measured>,
) {
    if !options.wants(name) {
        return;
    }
    eprintln!("compare: measuring {name} ...");
    let started = Instant::now();
    let others = others::Snapshot::now();
    let _watched = watchdog::watch(name);
    match catch_unwind(AssertUnwindSafe(|| measure::measure(&scenario(), plan))) {
        Ok(measured) => {
            let result = ScenarioResult {
                scenario: name.to_string(),
                measured: adjust(measured),
            };
            eprint!("{}", report::details(&result));
            took_line(name, started, &others);
            results.push(result);
        }
        Err(_) => eprintln!("compare: skipping {name}: a contender panicked (message above)"),
    }
}

/// What other processes ran while each scenario did, one `#` line each (see
/// `concur_benches::others`), printed with the rows.
static OTHERS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Says how long `name` took and what other processes ran meanwhile (the five largest), on
/// stderr now and in [`OTHERS`] for stdout.
fn took_line(name: &str, started: Instant, before: &others::Snapshot) {
    let steal = match before.steal_since() {
        Some(steal) => format!("; stolen by the hypervisor: {} ms", steal.as_millis()),
        None => String::new(),
    };
    let took = others::text(&before.since(), 5) + &steal;
    eprintln!(
        "  ({name} took {:.1} s; other processes meanwhile: {took})",
        started.elapsed().as_secs_f64()
    );
    OTHERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(format!("other processes' CPU during {name}: {took}"));
}

/// The CPython peer: runs `python/peers.py` per group and remembers why it skipped.
struct PythonPeer {
    enabled: bool,
    quick: bool,
    /// Why CPython figures are missing, one line each.
    skipped: Vec<String>,
    /// After one run is killed for time, later ones are skipped.
    gave_up: bool,
}

impl PythonPeer {
    fn new(options: &Options) -> Self {
        Self {
            enabled: options.python,
            quick: options.quick,
            skipped: Vec::new(),
            gave_up: false,
        }
    }

    /// Adds the script's figures for `group` to the matching scenarios of `results`.
    fn join(&mut self, group: &str, results: &mut [ScenarioResult]) {
        if !self.enabled {
            self.skip(format!("{group}: --no-python"));
            return;
        }
        if self.gave_up {
            self.skip(format!("{group}: an earlier run was killed for time"));
            return;
        }
        eprintln!(
            "compare: measuring {group} with {} {} ...",
            python::interpreter(),
            python::script().display()
        );
        let started = Instant::now();
        let run = python::Run {
            quick: self.quick,
            smoke: false,
            limit: if self.quick {
                Duration::from_secs(30)
            } else {
                Duration::from_secs(120)
            },
        };
        match python::measure(&[group], run) {
            Ok(figures) => {
                for figure in figures {
                    eprintln!(
                        "  {:<12} {:<18} median {:>10.1} ns  (samples {:.1} .. {:.1})",
                        figure.scenario,
                        figure.measured.name,
                        figure.measured.ns,
                        figure.measured.range.0,
                        figure.measured.range.1
                    );
                    if let Some(r) = results.iter_mut().find(|r| r.scenario == figure.scenario) {
                        r.measured.push(figure.measured);
                    }
                }
                eprintln!(
                    "  (CPython {group} took {:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(why) => {
                self.gave_up |= why.contains("killed");
                self.skip(format!("{group}: {why}"));
            }
        }
    }

    fn skip(&mut self, why: String) {
        eprintln!("compare: skipping the CPython peer for {why}");
        self.skipped.push(why);
    }
}

/// `wait_any/N`, `wait_register/N` and `as_completed`, each group followed by CPython's.
fn wait_scenarios(
    options: &Options,
    plan: Plan,
    results: &mut Vec<ScenarioResult>,
    python: &mut PythonPeer,
) {
    let wake: Vec<&str> = wait_any::SIZES
        .iter()
        .map(|&n| wait_any::wake_name(n))
        .collect();
    for n in wait_any::SIZES {
        measure_into(
            results,
            options,
            wait_any::wake_name(n),
            plan.shorter_slices(2),
            &|| wait_any::wake_scenario(n),
            |m| m,
        );
    }
    if options.wants_any(&wake) {
        python.join("wait_any", results);
    }
    let register: Vec<&str> = wait_any::SIZES
        .iter()
        .map(|&n| wait_any::register_name(n))
        .collect();
    for n in wait_any::SIZES {
        measure_into(
            results,
            options,
            wait_any::register_name(n),
            plan,
            &|| wait_any::register_scenario(n),
            |m| m,
        );
    }
    if options.wants_any(&register) {
        python.join("wait_register", results);
    }
    if options.wants(as_completed::NAME) {
        let n = as_completed::FUTURES;
        measure_into(
            results,
            options,
            as_completed::NAME,
            plan,
            &|| as_completed::scenario(n),
            |m| as_completed::per_future(m, n),
        );
        python.join("as_completed", results);
    }
}

/// The idle-CPU figure (first, before any peer pool has started threads), `pool/round_trip`,
/// `pool/round_trip_runs` and `pool/throughput_100k`, then CPython's.
fn pool_scenarios(
    options: &Options,
    plan: Plan,
    results: &mut Vec<ScenarioResult>,
    python: &mut PythonPeer,
) -> Option<pool::IdleCpu> {
    let idle = if options.wants(pool::IDLE_CPU) {
        eprintln!("compare: measuring {} ...", pool::IDLE_CPU);
        let watched = watchdog::watch(pool::IDLE_CPU);
        let idle = pool::idle_cpu(Duration::from_millis(10), Duration::from_millis(100));
        drop(watched);
        match &idle {
            Some(idle) => eprintln!(
                "  {:<12} ours/submit        {:.3}% of one CPU ({} µs over {:?}; {} ticks)",
                pool::IDLE_CPU,
                idle.percent(),
                idle.used.precise.as_micros(),
                idle.window,
                idle.used.ticks
            ),
            None => eprintln!("compare: skipping {}: no /proc here", pool::IDLE_CPU),
        }
        idle
    } else {
        None
    };
    measure_into(
        results,
        options,
        pool::ROUND_TRIP,
        plan,
        &pool::round_trip_scenario,
        |m| m,
    );
    sample_into(results, options, pool::ROUND_TRIP_RUNS, || {
        runs::measure(&pool::round_trip_scenario(), options.protocol())
    });
    measure_into(
        results,
        options,
        pool::THROUGHPUT,
        plan,
        &pool::throughput_scenario,
        pool::per_task,
    );
    if options.wants_any(&[pool::ROUND_TRIP, pool::THROUGHPUT]) {
        python.join("pool", results);
    }
    idle
}

/// Measures `name` (if asked for) from `samples()`, one figure per call of the measured
/// operation (start-up, a kill), under the watchdog; a panic skips the scenario.
fn sample_into(
    results: &mut Vec<ScenarioResult>,
    options: &Options,
    name: &'static str,
    samples: impl FnOnce() -> Vec<Measured>,
) {
    if !options.wants(name) {
        return;
    }
    eprintln!("compare: measuring {name} ...");
    let started = Instant::now();
    let others = others::Snapshot::now();
    let _watched = watchdog::watch(name);
    match catch_unwind(AssertUnwindSafe(samples)) {
        Ok(measured) => {
            let result = ScenarioResult {
                scenario: name.to_string(),
                measured,
            };
            eprint!("{}", report::details(&result));
            took_line(name, started, &others);
            results.push(result);
        }
        Err(_) => eprintln!("compare: skipping {name}: it panicked (message above)"),
    }
}

/// The process pool's scenarios, then CPython's `ProcessPoolExecutor`.
fn process_scenarios(
    options: &Options,
    plan: Plan,
    results: &mut Vec<ScenarioResult>,
    python: &mut PythonPeer,
) {
    if !options.wants_any(&process::ALL)
        && !options.wants_any(&[
            process::ROUND_TRIP_1CPU,
            process::ROUND_TRIP_SPLIT,
            process_spaced::NAME,
        ])
    {
        return;
    }
    let samples = plan.rounds;
    sample_into(results, options, process::STARTUP, || {
        process::startup(samples, this_binary().ok().as_deref())
    });
    measure_into(
        results,
        options,
        process::ROUND_TRIP,
        plan,
        &|| process::round_trip_scenario(echo_command()),
        |m| m,
    );
    one_cpu_into(results, options, process::ROUND_TRIP_1CPU);
    match affinity::two_allowed_cpus() {
        Some((a, b)) => measure_into(
            results,
            options,
            process::ROUND_TRIP_SPLIT,
            plan,
            &|| process::round_trip_split_scenario(echo_command(), a, b),
            |m| m,
        ),
        None => eprintln!(
            "compare: fewer than two CPUs to pin to; skipping {}",
            process::ROUND_TRIP_SPLIT
        ),
    }
    for (name, chunksize, items) in [
        (process::MAP_1, 1, process::map_1_items(options.quick)),
        (process::MAP_1000, 1000, process::MAP_ITEMS),
    ] {
        measure_into(
            results,
            options,
            name,
            process::map_plan(plan, chunksize),
            &|| process::map_scenario(chunksize, items),
            |m| process::per_item(m, items),
        );
    }
    sample_into(results, options, process::DEATH_TO_ERROR, || {
        process::death_to_error(samples)
    });
    sample_into(results, options, process_spaced::NAME, || {
        process_spaced::spaced_cpu(samples, echo_command()).unwrap_or_else(|| {
            eprintln!("compare: no /proc/<pid>/task/*/schedstat; no figure");
            Vec::new()
        })
    });
    python.join("process", results);
}

/// This very binary: `/proc/self/exe` runs it even if a build replaced the file meanwhile
/// (the target directory is shared); `current_exe` would name the new file, or a deleted one.
fn this_binary() -> Result<std::path::PathBuf, String> {
    let proc_exe = std::path::Path::new("/proc/self/exe");
    if proc_exe.exists() {
        Ok(proc_exe.to_path_buf())
    } else {
        std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))
    }
}

/// Runs this binary again as `--child name` and reads its measurements.
fn run_child(name: &str, quick: bool) -> Result<Vec<concur_benches::measure::Measured>, String> {
    let mut command = Command::new(this_binary()?);
    command.args([CHILD, name]);
    if quick {
        command.arg("--quick");
    }
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run the child: {e}"))?;
    if !output.status.success() {
        return Err(format!("the child failed: {}", output.status));
    }
    let text = String::from_utf8(output.stdout).map_err(|_| "the child printed non-UTF-8")?;
    report::from_child_lines(&text).ok_or_else(|| "the child's output is malformed".to_string())
}

/// The command that runs [`process::echo`]: this binary as `--child process/raw_pipe`.
fn echo_command() -> Option<Vec<std::ffi::OsString>> {
    this_binary().ok().map(|exe| {
        vec![
            exe.into_os_string(),
            CHILD.into(),
            process::ECHO_CHILD.into(),
        ]
    })
}

/// Measures `scenario` in a child process pinned to one CPU (see [`one_cpu_child`]).
fn one_cpu_into(results: &mut Vec<ScenarioResult>, options: &Options, scenario: &'static str) {
    if !options.wants(scenario) {
        return;
    }
    eprintln!("compare: measuring {scenario} in a child process ...");
    let watched = watchdog::watch(scenario);
    let child = run_child(scenario, options.quick);
    drop(watched);
    match child {
        Ok(measured) => {
            let result = ScenarioResult {
                scenario: scenario.to_string(),
                measured,
            };
            eprint!("{}", report::details(&result));
            results.push(result);
        }
        Err(why) => eprintln!("compare: skipping {scenario}: {why}"),
    }
}

/// The child: restrict the whole process to one CPU before any other thread or wait exists
/// (so the core sees one CPU, as under `taskset -c 0`, and every thread and process it starts
/// inherits that CPU), then measure `scenario`.
fn one_cpu_child(
    plan: Plan,
    scenario: &dyn Fn() -> concur_benches::contender::Scenario,
) -> ExitCode {
    let Some(cpu) = affinity::first_allowed_cpu() else {
        eprintln!("compare: CPU pinning unsupported here");
        return ExitCode::FAILURE;
    };
    let _pin = affinity::pin_current_thread(cpu);
    eprintln!(
        "compare: child pinned to CPU {cpu}; available_parallelism: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let measured = measure::measure(&scenario(), plan);
    print!("{}", report::to_child_lines(&measured));
    ExitCode::SUCCESS
}

/// Ends the process if one scenario runs far longer than any should: a lost wake-up in ours,
/// or in a peer whose API has no timed wait (tokio's `JoinHandle`), is a bug to report, not to
/// wait out. Most waits have their own time limits as well.
mod watchdog {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    static WATCHED: Mutex<Option<(&'static str, Instant)>> = Mutex::new(None);

    /// Starts the watching thread: a scenario watched for longer than `limit` ends the run.
    pub fn start(limit: Duration) {
        let spawned = std::thread::Builder::new()
            .name("compare-watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(250));
                    let watched = *WATCHED.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((name, since)) = watched {
                        if since.elapsed() > limit {
                            println!("# {name} ran for over {limit:?}: hung; the run stops here");
                            eprintln!("compare: {name} ran for over {limit:?}: hung; exiting");
                            std::process::exit(3);
                        }
                    }
                }
            });
        if spawned.is_err() {
            eprintln!("compare: cannot start the watchdog; hangs will not be caught");
        }
    }

    /// Watches `name` until the guard is dropped.
    pub fn watch(name: &'static str) -> Guard {
        *WATCHED.lock().unwrap_or_else(|e| e.into_inner()) = Some((name, Instant::now()));
        Guard
    }

    /// Stops watching when dropped.
    pub struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            *WATCHED.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}
