//! Differentiable building blocks and the CPU kernels under them, one module per concern.
//! Candle-nn's fast `rms_norm`, `softmax_last_dim` and `rope` kernels have no backward pass
//! (gradients silently stop there), so the model is built from these instead:
//! compositions of basic tensor ops, or custom ops that bring their own backward.
//!
//! - `matmul`: frozen-weight projections (alone, or with their LoRA pair as one op), gemm
//!   on strided views, and the few-rows kernel for decoding steps;
//! - `decode`: the attention of one decoding step over the KV cache;
//! - `norms`: RMSNorm, softmax, rope and SiLU-gate, each composed (its specification, and
//!   what other devices run) and fused (CPU f32, with its own backward);
//! - `cross_entropy`: the loss over answer tokens, and target log-probs for scoring;
//! - `sampling`: the sampler's weights;
//! - `exp` and `lanes`: the vectorised `exp` and the AVX-512 lane helpers they share;
//! - `pool`: running on Candle's thread pool, and keeping its idle workers from spinning.
//!
//! Everything is re-exported here, so callers name `ops::frozen_matmul`, never a module.

use candle_core::{CpuStorage, DType, Device, Layout, Shape, Tensor};

mod cross_entropy;
mod decode;
mod exp;
mod lanes;
mod matmul;
mod norms;
mod pool;
mod sampling;

pub use cross_entropy::{cross_entropy_rows, cross_entropy_rows_plain, target_logprobs};
pub use decode::{decode_attention, decode_attention_applies};
pub use matmul::{few_rows_abt, frozen_matmul, frozen_matmul_lora, frozen_matmul_quant, WeightRows, FEW_ROWS};
pub(crate) use matmul::{gemm_into, Mat};
pub(crate) use norms::softmax_row;
pub use norms::{rms_norm, rms_norm_fused, rope, rope_fused, silu_mul_fused, softmax_fused, softmax_last_dim};
pub use pool::{on_pool, park_idle_candle_workers};
pub use sampling::sampling_weights;

type CResult<T> = candle_core::Result<T>;

/// A raw pointer that may cross into the pool's closure; the closure finishes before the
/// buffer it points into is touched again.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer, through a method so that closures capture the whole (Send) wrapper
    /// rather than its raw-pointer field.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

pub(crate) fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> CResult<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("expected a contiguous input, got strides {:?}", l.stride()),
    }
}

/// A contiguous CPU f32 tensor's values, borrowed from its storage (no copy). `G` is the
/// read guard of the tensor's storage lock.
pub(crate) struct F32View<G> {
    guard: G,
    range: (usize, usize),
}

impl<G: std::ops::Deref<Target = candle_core::Storage>> F32View<G> {
    pub(crate) fn get(&self) -> &[f32] {
        match &*self.guard {
            candle_core::Storage::Cpu(CpuStorage::F32(v)) => &v[self.range.0..self.range.1],
            _ => unreachable!("checked in f32_view"),
        }
    }
}

pub(crate) fn f32_view(t: &Tensor) -> CResult<F32View<impl std::ops::Deref<Target = candle_core::Storage> + '_>> {
    let (guard, layout) = t.storage_and_layout();
    let Some(range) = layout.contiguous_offsets() else {
        candle_core::bail!("expected a contiguous tensor, got strides {:?}", layout.stride())
    };
    if !matches!(&*guard, candle_core::Storage::Cpu(CpuStorage::F32(_))) {
        candle_core::bail!("expected an f32 tensor on the CPU");
    }
    Ok(F32View { guard, range })
}

/// The rows of `x` (all but its last dimension) for an inner dimension `k`, or an error
/// naming the op if its last dimension is not `k`.
pub(crate) fn rows_of(op: &str, dims: &[usize], k: usize) -> CResult<usize> {
    if dims.last() != Some(&k) {
        candle_core::bail!("{op}: input {dims:?} for an inner dimension of {k}");
    }
    Ok(dims.iter().product::<usize>() / k.max(1))
}

/// `dims` with its last dimension replaced by `n`.
pub(crate) fn with_last(dims: &[usize], n: usize) -> Shape {
    let mut d = dims.to_vec();
    *d.last_mut().expect("rank >= 1") = n;
    Shape::from(d)
}

pub(crate) fn cpu_f32(t: &Tensor) -> CResult<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

pub(crate) fn is_cpu_f32(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}
