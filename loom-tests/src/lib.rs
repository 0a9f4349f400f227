//! Shared harness for the loom models in `tests/` (built only with `--cfg concur_loom`) and
//! their plain-`std` twins (`tests/miri_twins.rs`).

/// Runs `body` under loom at `LOOM_MAX_PREEMPTIONS`, 3 when unset: at 2 a model of this
/// protocol misses "touch after FIRED" bugs (DESIGN §2).
///
/// Prints how many executions loom explored (`loom executions: N`, seen with `--nocapture`;
/// `run-loom.sh` reports it next to each model's time), and installs
/// [`abort_on_callback_panic`].
#[cfg(concur_loom)]
pub fn model(body: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering};

    concur_core::set_callback_panic_hook(abort_on_callback_panic);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = executions.clone();
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        body();
    });
    println!("loom executions: {}", executions.load(Ordering::Relaxed));
}

/// The callback-panic hook of the models and the twins.
///
/// concur-core catches a panic in a done-callback or in a waker's `wake` and only reports it,
/// which would hide a failed check made inside a callback, or a race that loom reports from
/// inside one (its report is a panic): print it and abort the test process instead.
pub fn abort_on_callback_panic(panic: &concur_core::CallbackPanic<'_>) {
    use std::io::Write;
    // Straight to stderr, not `eprintln!`: the test harness captures that, and the abort would
    // lose it.
    let _ = writeln!(std::io::stderr(), "{panic}; aborting");
    std::process::abort();
}

/// A blocking hook that runs every task a thread blocks on inline, as a one-worker pool's does:
/// its future then finishes while the queued `Task` still holds the producer's share.
pub struct RunInline;

impl concur_core::BlockingHook for RunInline {
    fn before_block(&self, future: &concur_core::Blocking<'_>) -> concur_core::Verdict {
        future.run_inline();
        concur_core::Verdict::Block
    }

    fn after_block(&self, _: &concur_core::Blocking<'_>) {}
}

/// Checks what `into_result` on one of several handles gave: the value `expected` (it was the
/// last handle, so the value moved out) or `Error::Shared`; anything else fails the model.
pub fn assert_taken_or_shared(outcome: Result<u32, concur_core::Error>, expected: u32) {
    match outcome {
        Ok(value) => assert_eq!(value, expected),
        Err(concur_core::Error::Shared) => {}
        Err(error) => panic!("unexpected {error:?}"),
    }
}
