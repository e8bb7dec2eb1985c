//! Candle's thread pools: where every parallel kernel runs, and keeping the element-wise
//! pool's idle workers from spinning.

/// Runs `f` on a thread of Candle's pool, where every parallel kernel here (and gemm,
/// through `gemm_abt`) runs. Called from a thread outside the pool, each kernel is a
/// hand-off: the work is queued, a worker woken, and the caller put to sleep until it is
/// done, hundreds of times a step. Called from a pool thread, a kernel runs in place and
/// only wakes the other workers. So a whole training step, scoring pass or decoding loop
/// runs inside one `on_pool` (2026-11-28, 2 threads: a training step 6.1 -> 5.2 s,
/// sampling at batch 16 +7 %); the kernels themselves call it too, which costs nothing
/// when they already run on the pool.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    candle_core::utils::with_threadpool(f)
}

/// Makes the workers of Candle's element-wise pool sleep as soon as they are idle, unless
/// the user has set `CANDLE_BARRIER_POOL_SPIN_LIMIT` (Candle reads it when it first uses
/// the pool). Candle 0.11 runs large element-wise ops (a layer's residual sums, every
/// gradient accumulation of the backward) on a pool of its own beside the one where gemm
/// runs, and by default its workers spin ~25,000 pauses after each op before parking: with
/// as many threads as cores, that spinning took a core's share from gemm. Training step,
/// Zen 3, 2 threads, four alternating pairs (2026-12-04): 7.16 / 7.25 / 6.64 / 6.72 s
/// spinning, 6.42 / 7.06 / 5.87 / 4.94 s parking, and 0.3-2.8 CPU seconds less each time;
/// 30 CLI training steps on short examples: 33.3 / 36.4 s spinning, 27.0 / 29.3 s parking.
/// Call it first thing in `main`, before other threads exist (it sets the environment).
pub fn park_idle_candle_workers() {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(VAR).is_none() {
        std::env::set_var(VAR, "0");
    }
}
