//! Frozen-weight projections: `x @ w^T` with only the input's gradient, alone or with the
//! layer's LoRA pair as one op; gemm on strided views; the few-rows kernel for decoding.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};

use super::pool::on_pool;
use super::{contiguous_f32, f32_view, is_cpu_f32, rows_of, with_last, CResult, SendPtr};
use crate::quant::QuantRows;

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
        if m == 0 || m > FEW_ROWS || k % 16 != 0 || !crate::quant::simd_available() {
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
/// model adds [`crate::adapter::Adapter::delta`] to the plain projection.
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
