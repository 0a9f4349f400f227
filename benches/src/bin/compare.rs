//! `compare`: ours against each peer, interleaved in one run, with the budgets judged.
//!
//! ```text
//! cargo run --release -p concur-benches --bin compare -- [--quick] [--only SCENARIO[,SCENARIO]]
//! ```
//!
//! Results go to stdout (see `concur_benches::report`); progress and per-contender details to
//! stderr. A missed budget is reported, never an error. Scenarios: `same_thread`, `pingpong`,
//! `pingpong_pinned` (both threads pinned to one CPU), `pingpong_split` (each thread on its own
//! CPU), `pingpong_1cpu` (run in a child process restricted to one CPU before anything else
//! runs).

use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use concur_benches::alloc_count::{self, Counting};
use concur_benches::budget::{self, ScenarioResult};
use concur_benches::measure::{self, Plan};
use concur_benches::scenarios::pingpong::rally::Placement;
use concur_benches::scenarios::{pingpong, same_thread};
use concur_benches::{affinity, footprint, report};

#[global_allocator]
static GLOBAL: Counting = Counting;

const CHILD: &str = "--child";

struct Options {
    quick: bool,
    only: Option<Vec<String>>,
    child: Option<String>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Options {
            quick: false,
            only: None,
            child: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--only" => {
                    let list = args.next().ok_or("--only needs a scenario list")?;
                    options.only = Some(list.split(',').map(str::to_string).collect());
                }
                CHILD => options.child = Some(args.next().ok_or("--child needs a scenario")?),
                "--bench" => {} // passed by `cargo bench`; harmless here
                "-h" | "--help" => {
                    return Err(
                        "usage: compare [--quick] [--only same_thread,pingpong,pingpong_pinned,pingpong_split,pingpong_1cpu]"
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

    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|s| s == scenario))
    }
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match &options.child {
        Some(name) if name == pingpong::ONE_CPU => one_cpu_child(options.plan()),
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
    let cpu = affinity::first_allowed_cpu();
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
    for (ty, size) in footprint::handle_sizes() {
        eprintln!("  size_of      {ty:<18} {size} bytes");
    }

    let mut results = Vec::new();
    let mut run = |name: &'static str,
                   scenario: &dyn Fn() -> concur_benches::contender::Scenario| {
        if !options.wants(name) {
            return;
        }
        eprintln!("compare: measuring {name} ...");
        let result = ScenarioResult {
            scenario: name.to_string(),
            measured: measure::measure(&scenario(), plan),
        };
        eprint!("{}", report::details(&result));
        results.push(result);
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
    if options.wants(pingpong::ONE_CPU) {
        eprintln!(
            "compare: measuring {} in a child process ...",
            pingpong::ONE_CPU
        );
        match run_child(pingpong::ONE_CPU, options.quick) {
            Ok(measured) => {
                let result = ScenarioResult {
                    scenario: pingpong::ONE_CPU.to_string(),
                    measured,
                };
                eprint!("{}", report::details(&result));
                results.push(result);
            }
            Err(why) => eprintln!("compare: skipping {}: {why}", pingpong::ONE_CPU),
        }
    }

    for result in &results {
        print!("{}", report::rows(result));
    }
    print!(
        "{}",
        report::verdicts(&budget::judge(&results, &footprints))
    );
    eprintln!("compare: done in {:.1} s", started.elapsed().as_secs_f64());
}

/// Runs this binary again as `--child name` and reads its measurements.
fn run_child(name: &str, quick: bool) -> Result<Vec<concur_benches::measure::Measured>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut command = Command::new(exe);
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

/// The child: restrict the whole process to one CPU before any other thread or wait exists
/// (so the core sees one CPU, as under `taskset -c 0`), then measure the free ping-pong.
fn one_cpu_child(plan: Plan) -> ExitCode {
    let Some(cpu) = affinity::first_allowed_cpu() else {
        eprintln!("compare: CPU pinning unsupported here");
        return ExitCode::FAILURE;
    };
    let _pin = affinity::pin_current_thread(cpu);
    eprintln!(
        "compare: child pinned to CPU {cpu}; available_parallelism: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let measured = measure::measure(
        &pingpong::scenario(pingpong::ONE_CPU, Placement::FREE),
        plan,
    );
    print!("{}", report::to_child_lines(&measured));
    ExitCode::SUCCESS
}
