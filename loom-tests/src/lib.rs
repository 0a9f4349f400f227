//! Shared harness for the loom models in `tests/` (built only with `--cfg concur_loom`).

/// Runs `body` under loom at `LOOM_MAX_PREEMPTIONS`, 3 when unset: at 2 a model of this
/// protocol misses "touch after FIRED" bugs (DESIGN §2).
#[cfg(concur_loom)]
pub fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(body);
}
