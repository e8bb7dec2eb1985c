//! Differentiable building blocks. Candle-nn's fast `rms_norm`, `softmax_last_dim` and
//! `rope` kernels have no backward pass (gradients silently stop there), so the model is
//! built from these instead: compositions of basic tensor ops, or custom ops that bring
//! their own backward.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, D};

use super::quant::QuantRows;

type CResult<T> = candle_core::Result<T>;

/// RMSNorm: `x / sqrt(mean(x^2) + eps) * w`, composed of basic ops so that gradients
/// flow to `x` (and to `w`, were it trainable).
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> CResult<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&inv)?.broadcast_mul(w)
}

/// Softmax over the last dimension. The subtracted maximum is detached: it cancels out of
/// the result mathematically, so its gradient is zero and need not be computed.
pub fn softmax_last_dim(x: &Tensor) -> CResult<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Rotary embedding in Hugging Face's rotate-half layout. `x` is `[b, h, t, d]`; `cos` and
/// `sin` are `[b, 1, t, d/2]` (one row per token position, so rows may have different
/// offsets, as left-padded batches need).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> CResult<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let a = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let b = (x2.broadcast_mul(cos)? + x1.broadcast_mul(sin)?)?;
    Tensor::cat(&[a, b], D::Minus1)
}

/// `x @ w^T` for a frozen weight `w` (`[out, in]`). Candle's own matmul backward always
/// computes the gradient of both operands; for a frozen weight that is wasted work and
/// memory, so this op's backward returns only the input's gradient.
pub fn frozen_matmul(x: &Tensor, w: &Tensor) -> CResult<Tensor> {
    frozen_matmul_quant(x, w, None)
}

/// [`frozen_matmul`] for a weight also held in a GGUF block format (`quant` must
/// dequantise exactly to `w`): decoding steps then read the blocks, 5-6 times fewer bytes,
/// and get the same values.
pub fn frozen_matmul_quant(x: &Tensor, w: &Tensor, quant: Option<&Arc<QuantRows>>) -> CResult<Tensor> {
    if !matches!(x.device(), Device::Cpu) || x.dtype() != DType::F32 {
        return x.broadcast_matmul(&w.t()?);
    }
    x.contiguous()?.apply_op1(FrozenMatmul { w: w.contiguous()?, quant: quant.cloned() })
}

struct FrozenMatmul {
    w: Tensor,
    quant: Option<Arc<QuantRows>>,
}

/// A matrix operand of [`gemm_into`]: a row-major buffer seen with its row and column
/// strides, so that a transposed operand is the same buffer with the strides swapped.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// The first `rows * cols` values of `data` as a row-major `[rows, cols]` matrix.
    pub(crate) fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix of {rows}x{cols} over {} values", data.len());
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    pub(crate) fn t(self) -> Self {
        Mat { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }
}

/// `dst[m, n] = scale * lhs @ rhs`, or `dst += scale * lhs @ rhs` when `accumulate`, with
/// `dst` row-major. gemm takes any strides, so transposed operands are never copied.
/// `par` spreads one product over the pool's threads; tasks that already run in parallel
/// pass false.
pub(crate) fn gemm_into(dst: &mut [f32], accumulate: bool, lhs: Mat, rhs: Mat, scale: f32, par: bool) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert!(rhs.rows == k && dst.len() >= m * n, "gemm_into: {m}x{k} @ {}x{n} into {}", rhs.rows, dst.len());
    if m == 0 || n == 0 {
        return;
    }
    let threads = candle_core::utils::get_num_threads();
    let par = if par && threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the asserts above (and in `Mat::rows`) keep every index gemm forms,
    // i * rs + j * cs for i < rows and j < cols, inside its buffer.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1f32,
            scale,
            false,
            false,
            false,
            par,
        );
    }
}

/// Runs `dst[m, n] = a[m, k] @ b^T` where `b` is `[n, k]` row-major, through gemm.
pub(crate) fn gemm_abt(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut dst = vec![0f32; m * n];
    // Candle runs its own kernels in a dedicated rayon pool; running ours there too keeps
    // one set of worker threads busy instead of two pools' threads spinning in turn.
    on_pool(|| gemm_into(&mut dst, false, Mat::rows(a, m, k), Mat::rows(b, n, k).t(), 1.0, true));
    dst
}

/// The most input rows [`few_rows_abt`] takes: decoding steps (one new token per sequence
/// of a sampling batch; the demo samples 40 at a time) and short prompts. Up to 64 rows it
/// measured faster than gemm on every projection shape of SmolLM2 (gemm re-packs the
/// whole weight matrix on every call, which a few rows cannot amortise).
pub const FEW_ROWS: usize = 64;

/// The weight operand of [`few_rows_abt`]: `[n, k]` row-major f32, or the same matrix in
/// a GGUF block format, which the kernel dequantises (exactly) four rows at a time.
#[derive(Clone, Copy)]
pub enum WeightRows<'a> {
    F32(&'a [f32]),
    Quant(&'a QuantRows),
}

/// `dst[m, n] = a[m, k] @ b^T` for at most [`FEW_ROWS`] rows of `a`, or None where it does
/// not apply (more rows, `k` not a multiple of 16, no AVX-512). gemm packs the whole of `b`
/// on every call, which for a handful of rows costs more than the product: a decoding step
/// at batch 16 spent most of its time packing weights. Here the work is split over `b`'s
/// rows (weight rows); each group of four weight rows is read from memory once (from its
/// block format, if it has one, into f32 in L1) and, while it is in L1, meets every row of
/// `a` in register tiles of 4 x 4 dot products. Each output is one row of `a` dotted with
/// one row of `b` in a fixed order (16-lane partial sums over `k`, then a sum across
/// lanes), so a result does not depend on the other rows in the batch, on where the tiles
/// fall, or on whether the weights came in f32 or in blocks.
pub fn few_rows_abt(a: &[f32], b: WeightRows, m: usize, n: usize, k: usize) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        if m == 0 || m > FEW_ROWS || k % 16 != 0 || !super::quant::simd_available() {
            return None;
        }
        let fits = match b {
            WeightRows::F32(b) => b.len() >= n * k,
            WeightRows::Quant(q) => q.rows() == n && q.cols() == k,
        };
        assert!(a.len() >= m * k && fits, "few_rows_abt: operands smaller than m x k and n x k");
        use rayon::prelude::*;
        // Not zeroed first: the tasks write every output (at batch 16 the vocabulary head's
        // 3 MB of zeros were a pass over memory per step for nothing).
        let mut dst: Vec<f32> = Vec::with_capacity(m * n);
        let out = SendPtr(dst.as_mut_ptr());
        let rows_per_task = 64;
        on_pool(|| {
            (0..n.div_ceil(rows_per_task)).into_par_iter().for_each(|t| {
                let j0 = t * rows_per_task;
                let j1 = (j0 + rows_per_task).min(n);
                // SAFETY: AVX-512F was detected above; `a` holds m rows of k and `b` n rows
                // of k (asserted); `dst` has room for m x n outputs and this task writes
                // only columns j0..j1 of it, which no other task touches.
                unsafe { few_rows_kernel(a, b, m, n, k, j0..j1, out.get()) }
            })
        });
        // SAFETY: the tasks above wrote all m x n outputs (every column range, every row).
        unsafe { dst.set_len(m * n) };
        Some(dst)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, b, m, n, k);
        None
    }
}

/// Columns `cols` of `dst[m, n] = a @ w^T`: weight rows in groups of 4 (then singly), and
/// for each group the rows of `a` in tiles of 4, 2 and 1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn few_rows_kernel(
    a: &[f32],
    w: WeightRows,
    m: usize,
    n: usize,
    k: usize,
    cols: std::ops::Range<usize>,
    dst: *mut f32,
) {
    thread_local! {
        /// Where a group of block-format rows is dequantised: 4 rows, at most 24 KB, in L1.
        /// One per thread and kept: a fresh zeroed buffer per task was ~30 MB of memset
        /// per decoding step.
        static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        if let WeightRows::Quant(_) = w {
            if scratch.len() < 4 * k {
                scratch.resize(4 * k, 0.0);
            }
        }
        let mut group = |j: usize, rows: usize| -> *const f32 {
            match w {
                WeightRows::F32(b) => b[j * k..(j + rows) * k].as_ptr(),
                WeightRows::Quant(q) => {
                    q.dequantize_rows_avx512(j, rows, scratch);
                    scratch.as_ptr()
                }
            }
        };
        let mut j = cols.start;
        while cols.end - j >= 4 {
            rows_of_a::<4>(a, group(j, 4), m, n, k, j, dst);
            j += 4;
        }
        while j < cols.end {
            rows_of_a::<1>(a, group(j, 1), m, n, k, j, dst);
            j += 1;
        }
    })
}

/// Every row of `a` against the `W` weight rows at `w` (output columns `j..j + W`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn rows_of_a<const W: usize>(a: &[f32], w: *const f32, m: usize, n: usize, k: usize, j: usize, dst: *mut f32) {
    let mut r = 0;
    while m - r >= 4 {
        dot_tile::<W, 4>(a, w, n, k, r, j, dst);
        r += 4;
    }
    if m - r >= 2 {
        dot_tile::<W, 2>(a, w, n, k, r, j, dst);
        r += 2;
    }
    if m - r == 1 {
        dot_tile::<W, 1>(a, w, n, k, r, j, dst);
    }
}

/// Rows `r0..r0 + R` of `a` dotted with the `W` weight rows at `wp` (output columns
/// `j0..j0 + W`), 16 lanes at a time, one accumulator register per output (W x R of
/// them): each loaded vector serves W or R products, which halves the loads per
/// multiply-add against one weight row at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn dot_tile<const W: usize, const R: usize>(
    a: &[f32],
    wp: *const f32,
    n: usize,
    k: usize,
    r0: usize,
    j0: usize,
    dst: *mut f32,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); R]; W];
    let ap = a.as_ptr().add(r0 * k);
    let mut c = 0;
    while c < k {
        let mut wv = [_mm512_setzero_ps(); W];
        for (i, wv) in wv.iter_mut().enumerate() {
            *wv = _mm512_loadu_ps(wp.add(i * k + c));
        }
        for r in 0..R {
            let av = _mm512_loadu_ps(ap.add(r * k + c));
            for i in 0..W {
                acc[i][r] = _mm512_fmadd_ps(wv[i], av, acc[i][r]);
            }
        }
        c += 16;
    }
    for (i, acc) in acc.iter().enumerate() {
        for (r, acc) in acc.iter().enumerate() {
            *dst.add((r0 + r) * n + j0 + i) = _mm512_reduce_add_ps(*acc);
        }
    }
}

/// Whether [`decode_attention`] takes these queries `[b, heads, t, hd]`: one position, f32
/// on the CPU, and no gradient wanted (sampling, not training).
pub fn decode_attention_applies(q: &Tensor) -> bool {
    #[cfg(target_arch = "x86_64")]
    let simd = std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let simd = false;
    let hd_fits = q.dim(3).is_ok_and(|hd| hd % 16 == 0 && hd <= 16 * MAX_HEAD_CHUNKS);
    simd && hd_fits && is_cpu_f32(q) && q.dim(2).ok() == Some(1) && !q.track_op()
}

/// The largest head size [`decode_attention`] takes, in 16-float chunks (128: Qwen2's
/// and Llama's; SmolLM2's is 64). A head's query and output stay in registers.
const MAX_HEAD_CHUNKS: usize = 8;

/// Attention for one new position per row (a decoding step): queries `q` `[b, heads, 1,
/// hd]` over keys and values `[b, kv_heads, s, hd]` (views into the KV cache: each
/// position's `hd` values contiguous, any row and head strides), with an optional additive
/// mask `[b, 1, 1, s]`; returns `[b, 1, heads * hd]`. The generic path makes two batched
/// matmuls per layer, i.e. a gemm call per row and kv head for a 3 x 64 by 64 x s product,
/// whose set-up cost more than the arithmetic. Here each (row, kv head) is one task: the
/// query heads that share the kv head score its keys, take a softmax and sum its values.
/// Rows are computed independently, so a sample does not depend on its batch-mates.
pub fn decode_attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, scale: f64) -> CResult<Tensor> {
    use rayon::prelude::*;
    if !decode_attention_applies(q) {
        candle_core::bail!(
            "decode-attention: needs one f32 query position, a head size of at most 128 in 16s, and a CPU with AVX-512"
        );
    }
    let (b, nh, _, hd) = q.dims4()?;
    let (_, nkv, s, _) = k.dims4()?;
    let rep = nh / nkv;
    let qv = cpu_f32(&(q * scale)?)?;
    let mv = mask.map(cpu_f32).transpose()?;
    if mv.as_ref().is_some_and(|m| m.len() != b * s) {
        candle_core::bail!("decode-attention: mask {:?} for {b} rows of {s} keys", mask.map(|m| m.dims().to_vec()));
    }
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (kd, vd) = match (&*ks, &*vs) {
        (candle_core::Storage::Cpu(kc), candle_core::Storage::Cpu(vc)) => {
            (kc.as_slice::<f32>()?, vc.as_slice::<f32>()?)
        }
        _ => candle_core::bail!("decode-attention: keys and values not on the CPU"),
    };
    let strides = |l: &Layout| -> CResult<(usize, usize, usize)> {
        match *l.stride() {
            [sb, sh, sp, 1] => Ok((sb, sh, sp)),
            _ => candle_core::bail!("decode-attention: each position's values must be contiguous"),
        }
    };
    let (ko, kst) = (kl.start_offset(), strides(kl)?);
    let (vo, vst) = (vl.start_offset(), strides(vl)?);
    let mut out = vec![0f32; b * nh * hd];
    on_pool(|| {
        out.par_chunks_mut(rep * hd).enumerate().for_each(|(task, out)| {
            let (row, g) = (task / nkv, task % nkv);
            let keys = Strided { data: kd, start: ko + row * kst.0 + g * kst.1, step: kst.2, len: hd };
            let values = Strided { data: vd, start: vo + row * vst.0 + g * vst.1, step: vst.2, len: hd };
            let queries = &qv[(row * nh + g * rep) * hd..(row * nh + (g + 1) * rep) * hd];
            let mask = mv.as_ref().map(|m| &m[row * s..(row + 1) * s]);
            // SAFETY: AVX-512F and the head size were checked by decode_attention_applies.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                match hd / 16 {
                    1 => attend_group::<1>(queries, keys, values, s, mask, out),
                    2 => attend_group::<2>(queries, keys, values, s, mask, out),
                    3 => attend_group::<3>(queries, keys, values, s, mask, out),
                    4 => attend_group::<4>(queries, keys, values, s, mask, out),
                    5 => attend_group::<5>(queries, keys, values, s, mask, out),
                    6 => attend_group::<6>(queries, keys, values, s, mask, out),
                    7 => attend_group::<7>(queries, keys, values, s, mask, out),
                    _ => attend_group::<MAX_HEAD_CHUNKS>(queries, keys, values, s, mask, out),
                }
            }
        })
    });
    Tensor::from_vec(out, (b, 1, nh * hd), q.device())
}

/// `len` consecutive values every `step` values from `start`: one kv head's positions.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    start: usize,
    step: usize,
    len: usize,
}

impl<'a> Strided<'a> {
    fn at(&self, p: usize) -> &'a [f32] {
        &self.data[self.start + p * self.step..self.start + p * self.step + self.len]
    }
}

/// The query heads that share one kv head (`queries`, `rep x hd`, already scaled, `hd =
/// 16 C`) attend over its `s` keys and values; each head's output goes to its `hd` slice
/// of `out`. The keys and values of one kv head (a few tens of KB) stay in cache while
/// each head in turn reads them with its query, and then its output, in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn attend_group<const C: usize>(
    queries: &[f32],
    keys: Strided,
    values: Strided,
    s: usize,
    mask: Option<&[f32]>,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let hd = 16 * C;
    debug_assert_eq!(keys.len, hd);
    let mut scores = vec![0f32; s];
    for (qh, out) in queries.chunks_exact(hd).zip(out.chunks_exact_mut(hd)) {
        let q: [__m512; C] = std::array::from_fn(|c| _mm512_loadu_ps(qh.as_ptr().add(16 * c)));
        // One 16-lane vector of products per key, reduced across lanes 16 keys at a time.
        let lanes = |p: usize| {
            let kp = keys.at(p).as_ptr();
            let mut acc = _mm512_mul_ps(q[0], _mm512_loadu_ps(kp));
            for (c, qc) in q.iter().enumerate().skip(1) {
                acc = _mm512_fmadd_ps(*qc, _mm512_loadu_ps(kp.add(16 * c)), acc);
            }
            acc
        };
        let mut p = 0;
        while p + 16 <= s {
            let dots = sum_lanes_of_16(std::array::from_fn(|i| lanes(p + i)));
            let bias = mask.map_or(_mm512_setzero_ps(), |m| _mm512_loadu_ps(m.as_ptr().add(p)));
            _mm512_storeu_ps(scores.as_mut_ptr().add(p), _mm512_add_ps(dots, bias));
            p += 16;
        }
        for p in p..s {
            scores[p] = _mm512_reduce_add_ps(lanes(p)) + mask.map_or(0.0, |m| m[p]);
        }
        softmax_in_place(&mut scores);
        let mut acc = [_mm512_setzero_ps(); C];
        for (p, &w) in scores.iter().enumerate() {
            let (w, vp) = (_mm512_set1_ps(w), values.at(p).as_ptr());
            for (c, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(w, _mm512_loadu_ps(vp.add(16 * c)), *acc);
            }
        }
        for (c, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.as_mut_ptr().add(16 * c), *acc);
        }
    }
}

/// Lane `i` of the result is the sum of the 16 lanes of `v[i]`: a tree of pairwise
/// shuffles and adds (46 instructions for 16 sums, against ~10 each one at a time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sum_lanes_of_16(v: [std::arch::x86_64::__m512; 16]) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    // Halve the partial sums per vector at each level, packing two vectors' halves into
    // one register: 16 vectors of 16 partials, 8 of 2 x 8, 4 of 4 x 4, 2 of 8 x 2, 1 of 16.
    let a: [__m512; 8] = std::array::from_fn(|j| {
        let (x, y) = (v[2 * j], v[2 * j + 1]);
        _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(x, y), _mm512_shuffle_f32x4::<0xEE>(x, y))
    });
    let b: [__m512; 4] = std::array::from_fn(|j| {
        let (x, y) = (a[2 * j], a[2 * j + 1]);
        _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(x, y), _mm512_shuffle_f32x4::<0xDD>(x, y))
    });
    // Quarter t of b[j] now holds 4 partials of v[4j + t].
    let c: [__m512; 2] = std::array::from_fn(|j| {
        let (x, y) = (b[2 * j], b[2 * j + 1]);
        _mm512_add_ps(_mm512_shuffle_ps::<0x44>(x, y), _mm512_shuffle_ps::<0xEE>(x, y))
    });
    let d = _mm512_add_ps(_mm512_shuffle_ps::<0x88>(c[0], c[1]), _mm512_shuffle_ps::<0xDD>(c[0], c[1]));
    // Lane 4t + k of d is the sum of v[4k + t]: put each sum in its own lane.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_ps(order, d)
}

/// The lanes of the 16 values from `i` that lie inside `n` values: all 16 but at the end.
#[cfg(target_arch = "x86_64")]
#[inline]
fn tail_mask(n: usize, i: usize) -> std::arch::x86_64::__mmask16 {
    if n - i >= 16 {
        0xFFFF
    } else {
        (1 << (n - i)) - 1
    }
}

/// The largest of `x` (negative infinity for none), 16 lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_lanes(x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for i in (0..x.len()).step_by(16) {
        let m = tail_mask(x.len(), i);
        max = _mm512_mask_max_ps(max, m, max, _mm512_maskz_loadu_ps(m, x.as_ptr().add(i)));
    }
    _mm512_reduce_max_ps(max)
}

/// Softmax of `x` in place, 16 lanes at a time with [`exp_lanes`] (the last, partial
/// group through a lane mask).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_in_place(x: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = x.len();
    let lanes = |i: usize| tail_mask(n, i);
    let max = _mm512_set1_ps(max_lanes(x));
    let p = x.as_mut_ptr();
    let mut total = _mm512_setzero_ps();
    for i in (0..n).step_by(16) {
        let e = exp_lanes(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes(i), p.add(i)), max));
        _mm512_mask_storeu_ps(p.add(i), lanes(i), e);
        total = _mm512_mask_add_ps(total, lanes(i), total, e);
    }
    let total = _mm512_set1_ps(_mm512_reduce_add_ps(total));
    for i in (0..n).step_by(16) {
        let e = _mm512_maskz_loadu_ps(lanes(i), p.add(i));
        _mm512_mask_storeu_ps(p.add(i), lanes(i), _mm512_div_ps(e, total));
    }
}

/// The unnormalised sampling weights `e^((x - max) / temperature)` of `logits` (so the
/// most likely token's is 1), written to `out`, and their total in f64. A decoding step
/// at batch 16 takes 16 x 49,152 exponentials here; libm's scalar f64 `exp` was 4 % of
/// the step's time.
pub fn sampling_weights(logits: &[f32], temperature: f32, out: &mut Vec<f32>) -> f64 {
    // Both paths write every weight: the kept buffer is only resized, never cleared (a
    // row's worth of zeros per token would be a pass over memory for nothing).
    out.resize(logits.len(), 0.0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected; `out` is as long as `logits`.
        return unsafe { sampling_weights_avx512(logits, temperature, out) };
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0f64;
    for (o, &x) in out.iter_mut().zip(logits) {
        *o = ((x - max) / temperature).exp();
        total += *o as f64;
    }
    total
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sampling_weights_avx512(logits: &[f32], temperature: f32, out: &mut [f32]) -> f64 {
    use std::arch::x86_64::*;
    let n = logits.len();
    let lanes = |i: usize| tail_mask(n, i);
    let (max, t) = (_mm512_set1_ps(max_lanes(logits)), _mm512_set1_ps(temperature));
    let (x, o) = (logits.as_ptr(), out.as_mut_ptr());
    let (mut lo, mut hi) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    for i in (0..n).step_by(16) {
        let z = _mm512_div_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes(i), x.add(i)), max), t);
        let e = _mm512_maskz_mov_ps(lanes(i), exp_lanes(z));
        _mm512_mask_storeu_ps(o.add(i), lanes(i), e);
        // The total in f64: 49,152 f32 terms would lose the small ones.
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(e)))));
    }
    _mm512_reduce_add_pd(_mm512_add_pd(lo, hi))
}

/// `e^x` in 16 lanes (softmax and sampling take it at `x <= 0`): `x = n ln 2 + r` with
/// `|r| <= ln 2 / 2`, `e^r` by its Taylor series to `r^7` (the next term is below 6e-9,
/// under f32's resolution), then scaled by `2^n` (`vscalefps`, which gives 0 below f32's
/// range and infinity above it). Within a few units in the last place of libm's `expf`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn exp_lanes(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    // Below -104, e^x is 0 in f32; clamping keeps -inf and -1e9 masks out of the reduction.
    let x = _mm512_max_ps(x, _mm512_set1_ps(-104.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
        x,
        _mm512_set1_ps(std::f32::consts::LOG2_E),
    ));
    // ln 2 in two parts, so that n * LN2_HI is exact and r keeps its low bits.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    // Horner: 1 + r (1 + r/2 (1 + r/3 (... (1 + r/7)))), as coefficients 1/k!.
    let mut p = _mm512_set1_ps(1.0 / 5040.0);
    for coef in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(coef));
    }
    _mm512_scalef_ps(p, n)
}

/// A raw pointer that may cross into the pool's closure; the closure finishes before the
/// buffer it points into is touched again.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer, through a method so that closures capture the whole (Send) wrapper
    /// rather than its raw-pointer field.
    fn get(self) -> *mut f32 {
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

/// `x @ w^T` for `m` rows of `x`: the few-rows kernel for decoding steps, gemm otherwise.
fn frozen_forward(x: &[f32], w: &Tensor, quant: Option<&Arc<QuantRows>>, m: usize) -> CResult<Vec<f32>> {
    let (n, k) = w.dims2()?;
    let wv = f32_view(w)?;
    let rows = match quant {
        Some(q) => WeightRows::Quant(q),
        None => WeightRows::F32(wv.get()),
    };
    Ok(few_rows_abt(x, rows, m, n, k).unwrap_or_else(|| gemm_abt(x, wv.get(), m, n, k)))
}

/// `grad @ w`: the input gradient of `x @ w^T`, for a row-major `w` (`[n, k]`).
fn frozen_input_grad(grad: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut gx = vec![0f32; m * k];
    on_pool(|| gemm_into(&mut gx, false, Mat::rows(grad, m, n), Mat::rows(w, n, k), 1.0, true));
    gx
}

/// The rows of `x` (all but its last dimension) for an inner dimension `k`, or an error
/// naming the op if its last dimension is not `k`.
fn rows_of(op: &str, dims: &[usize], k: usize) -> CResult<usize> {
    if dims.last() != Some(&k) {
        candle_core::bail!("{op}: input {dims:?} for an inner dimension of {k}");
    }
    Ok(dims.iter().product::<usize>() / k.max(1))
}

/// `dims` with its last dimension replaced by `n`.
fn with_last(dims: &[usize], n: usize) -> Shape {
    let mut d = dims.to_vec();
    *d.last_mut().expect("rank >= 1") = n;
    Shape::from(d)
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let (n, k) = self.w.dims2()?;
        let m = rows_of("frozen-matmul", l.dims(), k)?;
        let y = frozen_forward(x, &self.w, self.quant.as_ref(), m)?;
        Ok((CpuStorage::F32(y), with_last(l.dims(), n)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let (n, k) = self.w.dims2()?;
        let m = grad.elem_count() / n;
        let (g, w) = (grad.contiguous()?, self.w.contiguous()?);
        let gx = frozen_input_grad(f32_view(&g)?.get(), f32_view(&w)?.get(), m, n, k);
        Ok(Some(Tensor::from_vec(gx, arg.shape(), arg.device())?))
    }
}

/// `x @ w^T + scale * (x @ a^T) @ b^T`: a frozen projection with its LoRA pair (`a`:
/// `[r, k]`, `b`: `[n, r]`), as one op. Composed from Candle ops, the adapter's two thin
/// matmuls, the scaling and the sum cost a training step more than a second in the
/// backward pass (2026-12-04, Zen 3): every transposed thin operand, every intermediate
/// gradient and every accumulation was its own pass and allocation. Here the backward is
/// five gemm calls on the buffers as they lie, and the input gradient of the projection
/// and of the adapter are summed in place. CPU and f32 only, and no dropout: elsewhere,
/// and with dropout (the adapter then sees another input than the projection), the
/// model adds [`super::lora::Adapter::delta`] to the plain projection.
pub fn frozen_matmul_lora(
    x: &Tensor,
    w: &Tensor,
    quant: Option<&Arc<QuantRows>>,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
) -> CResult<Tensor> {
    if !is_cpu_f32(x) {
        candle_core::bail!("frozen-matmul-lora runs on CPU f32 tensors, got {:?} {:?}", x.device(), x.dtype());
    }
    let op = FrozenLinearLora { w: w.contiguous()?, quant: quant.cloned(), scale: scale as f32 };
    x.contiguous()?.apply_op3(&a.contiguous()?, &b.contiguous()?, op)
}

struct FrozenLinearLora {
    w: Tensor,
    quant: Option<Arc<QuantRows>>,
    scale: f32,
}

impl FrozenLinearLora {
    /// `(n, k, r)`, checked against the adapter's shapes.
    fn dims(&self, a: &[usize], b: &[usize]) -> CResult<(usize, usize, usize)> {
        let (n, k) = self.w.dims2()?;
        let r = a.first().copied().unwrap_or(0);
        if a != [r, k] || b != [n, r] {
            candle_core::bail!("lora: a {a:?} and b {b:?} for a weight of {:?}", (n, k));
        }
        Ok((n, k, r))
    }
}

impl candle_core::CustomOp3 for FrozenLinearLora {
    fn name(&self) -> &'static str {
        "frozen-matmul-lora"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (x, a, b) = (contiguous_f32(s1, l1)?, contiguous_f32(s2, l2)?, contiguous_f32(s3, l3)?);
        let (n, k, r) = self.dims(l2.dims(), l3.dims())?;
        let m = rows_of("frozen-matmul-lora", l1.dims(), k)?;
        let mut y = frozen_forward(x, &self.w, self.quant.as_ref(), m)?;
        let mut t = vec![0f32; m * r];
        on_pool(|| {
            gemm_into(&mut t, false, Mat::rows(x, m, k), Mat::rows(a, r, k).t(), 1.0, false);
            gemm_into(&mut y, true, Mat::rows(&t, m, r), Mat::rows(b, n, r).t(), self.scale, true);
        });
        Ok((CpuStorage::F32(y), with_last(l1.dims(), n)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, k, r) = self.dims(a.dims(), b.dims())?;
        let m = x.elem_count() / k;
        let (xc, g, w) = (x.contiguous()?, grad.contiguous()?, self.w.contiguous()?);
        let (xv, gv, wv, av, bv) = (f32_view(&xc)?, f32_view(&g)?, f32_view(&w)?, f32_view(a)?, f32_view(b)?);
        let (x, g, a, b) = (
            Mat::rows(xv.get(), m, k),
            Mat::rows(gv.get(), m, n),
            Mat::rows(av.get(), r, k),
            Mat::rows(bv.get(), n, r),
        );
        // No input gradient for an input that depends on no variable (the first layer's
        // normed embeddings): Candle records the op for the adapter's sake and would drop it.
        let mut gx = xc.track_op().then(|| frozen_input_grad(gv.get(), wv.get(), m, n, k));
        let (mut u, mut t) = (vec![0f32; m * r], vec![0f32; m * r]);
        let (mut ga, mut gb) = (vec![0f32; r * k], vec![0f32; n * r]);
        on_pool(|| {
            // u = scale g b is the gradient at the adapter's bottleneck (x a^T).
            gemm_into(&mut u, false, g, b, self.scale, false);
            if let Some(gx) = gx.as_mut() {
                gemm_into(gx, true, Mat::rows(&u, m, r), a, 1.0, true);
            }
            gemm_into(&mut t, false, x, a.t(), 1.0, false);
            gemm_into(&mut gb, false, g.t(), Mat::rows(&t, m, r), self.scale, false);
            gemm_into(&mut ga, false, Mat::rows(&u, m, r).t(), x, 1.0, false);
        });
        let dev = grad.device();
        Ok((
            gx.map(|gx| Tensor::from_vec(gx, xc.shape(), dev)).transpose()?,
            Some(Tensor::from_vec(ga, (r, k), dev)?),
            Some(Tensor::from_vec(gb, (n, r), dev)?),
        ))
    }
}

/// `exp` for the element-wise kernels (softmax, cross-entropy, SiLU): range reduction to
/// `2^n e^r` with `|r| <= ln2 / 2` and a degree-6 polynomial for `e^r`, within 3.6e-7
/// relative of the true value (a few units in the last place) from -87 to 88, exactly 0
/// below `ln(f32::MIN_POSITIVE)` (masked scores), and `e^88` (~1.7e38) above 88, where
/// the kernels only take `1 / (1 + e^x)`. Every step has a SIMD form (no calls, a select
/// rather than a branch), so the loops of [`exp_in_place`] compile to vector code: libm's
/// scalar `expf` was the largest cost of a training step after gemm (5 % of its CPU
/// time, 2026-12-04).
#[inline(always)]
fn exp_poly(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.33, 88.0);
    let n = (xc * std::f32::consts::LOG2_E + 0.5).floor();
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.666_666_7e-1 + r * (4.166_662e-2 + r * (8.333_452e-3 + r * 1.388_276_5e-3)))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < -87.33 {
        0.0
    } else {
        p * scale
    }
}

/// `xs[i] = exp(xs[i])`, with AVX2 where the CPU has it (8 lanes; the loop is the same
/// code, compiled twice).
pub(crate) fn exp_in_place(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were detected just above.
        return unsafe { exp_in_place_avx2(xs) };
    }
    xs.iter_mut().for_each(|x| *x = exp_poly(*x));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_in_place_avx2(xs: &mut [f32]) {
    xs.iter_mut().for_each(|x| *x = exp_poly(*x));
}

/// `log(sum(exp(row)))`, stable (the maximum is taken out first).
fn row_lse(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut buf = [0f32; 512];
    let mut sum = 0f32;
    for chunk in row.chunks(buf.len()) {
        let b = &mut buf[..chunk.len()];
        b.iter_mut().zip(chunk).for_each(|(o, &x)| *o = x - max);
        exp_in_place(b);
        sum += b.iter().sum::<f32>();
    }
    max + sum.ln()
}

/// Negative log-likelihood of `targets` under `logits` (`[n, vocab]`), per row, fused:
/// the backward is `softmax - onehot` computed from the logits directly, so neither a
/// log-softmax matrix nor its gradient graph is materialised.
pub fn cross_entropy_rows(logits: &Tensor, targets: &[u32]) -> CResult<Tensor> {
    if !is_cpu_f32(logits) {
        return cross_entropy_rows_plain(logits, targets);
    }
    logits.apply_op1(CrossEntropy { targets: targets.to_vec() })
}

/// [`cross_entropy_rows`] from plain ops (log-softmax, gather): its specification, and
/// what runs on devices the fused kernel does not cover (CUDA).
pub fn cross_entropy_rows_plain(logits: &Tensor, targets: &[u32]) -> CResult<Tensor> {
    let t = Tensor::new(targets, logits.device())?.unsqueeze(1)?;
    candle_nn::ops::log_softmax(logits, D::Minus1)?.gather(&t, 1)?.squeeze(1)?.neg()
}

struct CrossEntropy {
    targets: Vec<u32>,
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy-rows"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let (n, v) = l.shape().dims2()?;
        if n != self.targets.len() {
            candle_core::bail!("cross-entropy: {n} rows but {} targets", self.targets.len());
        }
        use rayon::prelude::*;
        let out: Vec<f32> = on_pool(|| {
            x.par_chunks(v).zip(self.targets.par_iter()).map(|(row, &t)| row_lse(row) - row[t as usize]).collect()
        });
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let (n, v) = arg.dims2()?;
        let arg = arg.contiguous()?;
        let xv = f32_view(&arg)?;
        let x = xv.get();
        let (g, loss) = (grad.to_vec1::<f32>()?, res.to_vec1::<f32>()?);
        use rayon::prelude::*;
        let mut out = vec![0f32; n * v];
        on_pool(|| {
            out.par_chunks_mut(v).zip(x.par_chunks(v)).enumerate().for_each(|(i, (o, row))| {
                // The forward's loss is lse - x[target], so the row's lse comes back for free.
                let t = self.targets[i] as usize;
                let lse = loss[i] + row[t];
                o.iter_mut().zip(row).for_each(|(oj, &xj)| *oj = xj - lse);
                exp_in_place(o);
                o.iter_mut().for_each(|oj| *oj *= g[i]);
                o[t] -= g[i];
            })
        });
        Ok(Some(Tensor::from_vec(out, (n, v), arg.device())?))
    }
}

/// Log-probabilities of `targets` under `logits` (`[n, vocab]`), without gradients.
pub fn target_logprobs(logits: &Tensor, targets: &[u32]) -> CResult<Vec<f32>> {
    let (n, v) = logits.dims2()?;
    let x = logits.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    Ok((0..n)
        .map(|i| {
            let row = &x[i * v..(i + 1) * v];
            row[targets[i] as usize] - row_lse(row)
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// Fused CPU kernels with their own backward. Each replaces a chain of small Candle ops
// (one pass over memory instead of five to ten, and no intermediate tensors kept for the
// backward pass); the composed versions above stay as their specification and are what
// other devices use.

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

pub(crate) fn cpu_f32(t: &Tensor) -> CResult<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

pub(crate) fn is_cpu_f32(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

/// Fused RMSNorm with a frozen weight.
pub fn rms_norm_fused(x: &Tensor, w: &Tensor, eps: f64) -> CResult<Tensor> {
    if !is_cpu_f32(x) {
        return rms_norm(x, w, eps);
    }
    x.contiguous()?.apply_op1(RmsNorm { w: cpu_f32(w)?, eps: eps as f32 })
}

struct RmsNorm {
    w: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn inv_rms(&self, row: &[f32]) -> f32 {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        1.0 / (ms + self.eps).sqrt()
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm-fused"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let x = contiguous_f32(s, l)?;
        let d = self.w.len();
        let mut y = vec![0f32; x.len()];
        on_pool(|| {
            y.par_chunks_mut(d).zip(x.par_chunks(d)).for_each(|(yr, xr)| {
                let r = self.inv_rms(xr);
                for ((o, &v), &w) in yr.iter_mut().zip(xr).zip(&self.w) {
                    *o = v * r * w;
                }
            })
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        use rayon::prelude::*;
        let x = cpu_f32(arg)?;
        let g = cpu_f32(grad)?;
        let d = self.w.len();
        let mut gx = vec![0f32; x.len()];
        // y = x r w with r = (mean(x^2) + eps)^-1/2, so
        // dx = r (g w) - x r^3 mean((g w) x).
        on_pool(|| {
            gx.par_chunks_mut(d).zip(x.par_chunks(d).zip(g.par_chunks(d))).for_each(|(o, (xr, gr))| {
                let r = self.inv_rms(xr);
                let dot = xr.iter().zip(gr).zip(&self.w).map(|((&xv, &gv), &w)| xv * gv * w).sum::<f32>() / d as f32;
                let k = r * r * r * dot;
                for (((oj, &xv), &gv), &w) in o.iter_mut().zip(xr).zip(gr).zip(&self.w) {
                    *oj = r * gv * w - xv * k;
                }
            })
        });
        Ok(Some(Tensor::from_vec(gx, arg.shape(), arg.device())?))
    }
}

/// Softmax of one row, in place.
pub(crate) fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter_mut().for_each(|x| *x -= max);
    exp_in_place(row);
    let inv = 1.0 / row.iter().sum::<f32>();
    row.iter_mut().for_each(|x| *x *= inv);
}

/// Fused softmax over the last dimension.
pub fn softmax_fused(x: &Tensor) -> CResult<Tensor> {
    if !is_cpu_f32(x) {
        return softmax_last_dim(x);
    }
    x.contiguous()?.apply_op1(Softmax)
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-fused"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let x = contiguous_f32(s, l)?;
        let d = *l.shape().dims().last().unwrap_or(&1);
        let mut y = vec![0f32; x.len()];
        on_pool(|| {
            y.par_chunks_mut(d).zip(x.par_chunks(d)).for_each(|(yr, xr)| {
                yr.copy_from_slice(xr);
                softmax_row(yr);
            })
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        use rayon::prelude::*;
        let y = cpu_f32(res)?;
        let g = cpu_f32(grad)?;
        let d = res.dim(D::Minus1)?;
        let mut gx = vec![0f32; y.len()];
        // dx = y (g - sum(g y)).
        on_pool(|| {
            gx.par_chunks_mut(d).zip(y.par_chunks(d).zip(g.par_chunks(d))).for_each(|(o, (yr, gr))| {
                let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                for ((oj, &yv), &gv) in o.iter_mut().zip(yr).zip(gr) {
                    *oj = yv * (gv - dot);
                }
            })
        });
        Ok(Some(Tensor::from_vec(gx, res.shape(), res.device())?))
    }
}

/// Fused rotary embedding (`x`: `[b, h, t, d]`, `cos`/`sin`: `[b, 1, t, d/2]`).
pub fn rope_fused(x: &Tensor, cos: &Tensor, sin: &Tensor) -> CResult<Tensor> {
    if !is_cpu_f32(x) {
        return rope(x, cos, sin);
    }
    let (b, h, t, d) = x.dims4()?;
    if cos.dims() != [b, 1, t, d / 2] {
        return rope(x, cos, sin);
    }
    x.contiguous()?.apply_op1(Rope { cos: cpu_f32(cos)?, sin: cpu_f32(sin)?, h, t, d })
}

struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
    h: usize,
    t: usize,
    d: usize,
}

impl Rope {
    /// Rotates every head row of `x` by the angle of its position; `sign` -1 rotates back,
    /// which is the backward pass (the rotation is orthogonal).
    fn apply(&self, x: &[f32], sign: f32) -> Vec<f32> {
        use rayon::prelude::*;
        let (h, t, d) = (self.h, self.t, self.d);
        let half = d / 2;
        let mut y = vec![0f32; x.len()];
        on_pool(|| {
            y.par_chunks_mut(d).zip(x.par_chunks(d)).enumerate().for_each(|(row, (yr, xr))| {
                let bi = row / (h * t);
                let ti = row % t;
                let off = (bi * t + ti) * half;
                let (c, s) = (&self.cos[off..off + half], &self.sin[off..off + half]);
                for i in 0..half {
                    let (x1, x2) = (xr[i], xr[i + half]);
                    let si = sign * s[i];
                    yr[i] = x1 * c[i] - x2 * si;
                    yr[i + half] = x2 * c[i] + x1 * si;
                }
            })
        });
        y
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope-fused"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        Ok((CpuStorage::F32(self.apply(x, 1.0)), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let g = cpu_f32(grad)?;
        Ok(Some(Tensor::from_vec(self.apply(&g, -1.0), arg.shape(), arg.device())?))
    }
}

/// Fused `silu(gate) * up`.
pub fn silu_mul_fused(gate: &Tensor, up: &Tensor) -> CResult<Tensor> {
    if !is_cpu_f32(gate) {
        return gate.silu()? * up;
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SiluMul)
}

struct SiluMul;

/// `1 / (1 + exp(-g))` of every element of `g`, into `out`.
fn sigmoid_into(g: &[f32], out: &mut [f32]) {
    out.iter_mut().zip(g).for_each(|(o, &x)| *o = -x);
    exp_in_place(out);
    out.iter_mut().for_each(|o| *o = 1.0 / (1.0 + *o));
}

impl candle_core::CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul-fused"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let g = contiguous_f32(s1, l1)?;
        let u = contiguous_f32(s2, l2)?;
        let mut y = vec![0f32; g.len()];
        on_pool(|| {
            y.par_chunks_mut(4096).zip(g.par_chunks(4096).zip(u.par_chunks(4096))).for_each(|(o, (gc, uc))| {
                sigmoid_into(gc, o);
                for ((oj, &gv), &uv) in o.iter_mut().zip(gc).zip(uc) {
                    *oj *= gv * uv;
                }
            })
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        use rayon::prelude::*;
        let (a, b, grad) = (a.contiguous()?, b.contiguous()?, grad.contiguous()?);
        let (gv, uv, yv) = (f32_view(&a)?, f32_view(&b)?, f32_view(&grad)?);
        let (g, u, gy) = (gv.get(), uv.get(), yv.get());
        let mut ga = vec![0f32; g.len()];
        let mut gb = vec![0f32; g.len()];
        on_pool(|| {
            ga.par_chunks_mut(4096)
                .zip(gb.par_chunks_mut(4096))
                .zip(g.par_chunks(4096).zip(u.par_chunks(4096)).zip(gy.par_chunks(4096)))
                .for_each(|((oa, ob), ((gc, uc), yc))| {
                    // ob holds the sigmoid until it becomes the gradient of `up`.
                    sigmoid_into(gc, ob);
                    for i in 0..gc.len() {
                        let s = ob[i];
                        ob[i] = yc[i] * gc[i] * s;
                        oa[i] = yc[i] * uc[i] * s * (1.0 + gc[i] * (1.0 - s));
                    }
                })
        });
        Ok((Some(Tensor::from_vec(ga, a.shape(), a.device())?), Some(Tensor::from_vec(gb, b.shape(), b.device())?)))
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The vectorised `exp` agrees with libm's to a few units in the last place from -100
    /// to 87 (near f32's largest), and is 0 for masked scores (-1e9, -inf).
    #[test]
    fn exp_lanes_matches_libm() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        use std::arch::x86_64::*;
        let xs: Vec<f32> =
            (0..20_000).map(|i| -100.0 + i as f32 * 0.00937).chain([0.0, -1e9, f32::NEG_INFINITY]).collect();
        for ch in xs.chunks(16) {
            let mut v = [0f32; 16];
            v[..ch.len()].copy_from_slice(ch);
            let mut got = [0f32; 16];
            // SAFETY: AVX-512F was detected.
            unsafe { _mm512_storeu_ps(got.as_mut_ptr(), exp_lanes(_mm512_loadu_ps(v.as_ptr()))) };
            for (&x, &g) in v.iter().zip(&got) {
                let want = x.exp();
                assert!((g - want).abs() <= want * 4e-7 + 1e-40, "exp({x}) = {g}, libm {want}");
            }
        }
    }

    /// The polynomial `exp` of the element-wise kernels stays within a few units in the
    /// last place of the true value from -87 to 88, gives exactly 0 for masked
    /// scores, and its AVX2 build gives the same bits as the portable one.
    #[test]
    fn exp_poly_matches_exp() {
        let xs: Vec<f32> =
            (0..200_000).map(|i| -100.0 + i as f32 * 0.000_943).chain([0.0, -1e9, f32::NEG_INFINITY, 88.7]).collect();
        let mut simd = xs.clone();
        exp_in_place(&mut simd);
        for (&x, &got) in xs.iter().zip(&simd) {
            let want = (x as f64).exp();
            if x < -87.33 {
                assert_eq!(got, 0.0, "exp({x})");
            } else if x > 88.0 {
                assert_eq!(got, exp_poly(88.0), "exp({x}) saturates");
            } else {
                assert!((got as f64 - want).abs() <= want * 3.6e-7, "exp({x}) = {got}, want {want}");
            }
            assert_eq!(got.to_bits(), exp_poly(x).to_bits(), "exp({x}): SIMD and portable builds differ");
        }
    }

    /// Sampling weights: the AVX-512 path gives the portable path's numbers to f32
    /// rounding, and the most likely token weighs exactly 1.
    #[test]
    fn sampling_weights_match_the_definition() {
        let logits: Vec<f32> = (0..1003).map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 12.0).collect();
        let mut w = Vec::new();
        let total = sampling_weights(&logits, 0.7, &mut w);
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let z: Vec<f64> = logits.iter().map(|&x| (x - max) as f64 / 0.7).collect();
        let want: Vec<f64> = z.iter().map(|z| z.exp()).collect();
        for ((g, x), z) in w.iter().zip(&want).zip(&z) {
            // The f32 argument carries a relative error of ~1e-7, i.e. |z| 1e-7 in e^z.
            assert!((*g as f64 - x).abs() <= x * (4e-7 + z.abs() * 2.4e-7), "{g} vs {x}");
        }
        assert!((total - want.iter().sum::<f64>()).abs() < 1e-5 * total);
        assert_eq!(w.iter().copied().fold(0f32, f32::max), 1.0);
    }
}
