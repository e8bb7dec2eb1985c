//! Differentiable building blocks. Candle-nn's fast `rms_norm`, `softmax_last_dim` and
//! `rope` kernels have no backward pass (gradients silently stop there), so the model is
//! built from these instead: compositions of basic tensor ops, or custom ops that bring
//! their own backward.

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, D};

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
    if !matches!(x.device(), Device::Cpu) || x.dtype() != DType::F32 {
        return x.broadcast_matmul(&w.t()?);
    }
    x.contiguous()?.apply_op1(FrozenMatmul { w: w.contiguous()? })
}

struct FrozenMatmul {
    w: Tensor,
}

/// Runs `dst[m, n] = a[m, k] @ b^T` where `b` is `[n, k]` row-major, through gemm.
pub(crate) fn gemm_abt(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut dst = vec![0f32; m * n];
    let threads = candle_core::utils::get_num_threads();
    let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    let dst_ptr = SendPtr(dst.as_mut_ptr());
    // Candle runs its own kernels in a dedicated rayon pool; running ours there too keeps
    // one set of worker threads busy instead of two pools' threads spinning in turn.
    candle_core::utils::with_threadpool(|| {
        let dst_ptr = dst_ptr;
        // SAFETY: the slices have exactly the sizes the strides describe: a is m x k with row
        // stride k, b^T is read as k x n with column stride k, dst is m x n with row stride n.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst_ptr.0,
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                k as isize,
                1,
                0f32,
                1f32,
                false,
                false,
                false,
                par,
            );
        }
    });
    dst
}

/// The most input rows [`few_rows_abt`] takes: decoding steps (one new token per sequence
/// of a sampling batch) and the last positions of a prompt.
pub const FEW_ROWS: usize = 16;

/// `dst[m, n] = a[m, k] @ b^T` for at most [`FEW_ROWS`] rows of `a`, or None where it does
/// not apply (more rows, `k` not a multiple of 16, no AVX-512). gemm packs the whole of `b`
/// on every call, which for a handful of rows costs more than the product: a decoding step
/// at batch 16 spent most of its time packing weights. Here each row of `b` (a weight row,
/// a few KB) is read from memory once and meets every row of `a` while it is in L1; the
/// work is split over `b`'s rows. Each output is one row of `a` dotted with one row of
/// `b` in a fixed order, so a result does not depend on the other rows in the batch.
pub fn few_rows_abt(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        if m == 0 || m > FEW_ROWS || k % 16 != 0 || !std::arch::is_x86_feature_detected!("avx512f") {
            return None;
        }
        use rayon::prelude::*;
        // Outputs of each weight row, `[n, m]`, transposed into `[m, n]` at the end.
        let mut by_col = vec![0f32; n * m];
        let rows_per_task = 64;
        par(|| {
            by_col.par_chunks_mut(rows_per_task * m).enumerate().for_each(|(t, out)| {
                let j0 = t * rows_per_task;
                let rows = out.len() / m;
                // SAFETY: AVX-512F was detected above; `b[j0 * k..]` holds `rows` rows of k,
                // `a` holds m rows of k, and `out` holds rows x m outputs.
                unsafe { few_rows_kernel(a, &b[j0 * k..(j0 + rows) * k], m, k, out) }
            })
        });
        let mut dst = vec![0f32; m * n];
        for (j, col) in by_col.chunks_exact(m).enumerate() {
            for (r, &v) in col.iter().enumerate() {
                dst[r * n + j] = v;
            }
        }
        Some(dst)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, b, m, n, k);
        None
    }
}

/// For each row of `w` (`[rows, k]`), its dot product with every row of `a` (`[m, k]`),
/// into `out[row * m + r]`; input rows go through in register tiles of 8, 4, 2 and 1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn few_rows_kernel(a: &[f32], w: &[f32], m: usize, k: usize, out: &mut [f32]) {
    for (j, wr) in w.chunks_exact(k).enumerate() {
        let o = &mut out[j * m..(j + 1) * m];
        let mut r = 0;
        while m - r >= 8 {
            dot_tile::<8>(a, r, wr, k, &mut o[r..r + 8]);
            r += 8;
        }
        if m - r >= 4 {
            dot_tile::<4>(a, r, wr, k, &mut o[r..r + 4]);
            r += 4;
        }
        if m - r >= 2 {
            dot_tile::<2>(a, r, wr, k, &mut o[r..r + 2]);
            r += 2;
        }
        if m - r == 1 {
            dot_tile::<1>(a, r, wr, k, &mut o[r..r + 1]);
        }
    }
}

/// `R` rows of `a` from row `r0`, each dotted with the weight row `wr`, 16 lanes at a time
/// (one accumulator register per input row), then summed across lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn dot_tile<const R: usize>(a: &[f32], r0: usize, wr: &[f32], k: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); R];
    let ap = a.as_ptr().add(r0 * k);
    let wp = wr.as_ptr();
    let mut c = 0;
    while c < k {
        let wv = _mm512_loadu_ps(wp.add(c));
        for (i, acc) in acc.iter_mut().enumerate() {
            *acc = _mm512_fmadd_ps(wv, _mm512_loadu_ps(ap.add(i * k + c)), *acc);
        }
        c += 16;
    }
    for (o, acc) in out.iter_mut().zip(acc) {
        *o = _mm512_reduce_add_ps(acc);
    }
}

/// A raw pointer that may cross into the pool's closure; the closure finishes before the
/// buffer it points into is touched again.
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> CResult<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("frozen-matmul needs a contiguous input"),
    }
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let (n, k) = self.w.dims2()?;
        let dims = l.shape().dims();
        if dims.last() != Some(&k) {
            candle_core::bail!("frozen-matmul: input {:?} vs weight {:?}", dims, (n, k));
        }
        let m = x.len() / k;
        let (ws, wl) = self.w.storage_and_layout();
        let y = match &*ws {
            candle_core::Storage::Cpu(c) => {
                let w = contiguous_f32(c, wl)?;
                few_rows_abt(x, w, m, n, k).unwrap_or_else(|| gemm_abt(x, w, m, n, k))
            }
            _ => candle_core::bail!("frozen-matmul: weight not on the CPU"),
        };
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().unwrap() = n;
        Ok((CpuStorage::F32(y), Shape::from(out_dims)))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let (n, k) = self.w.dims2()?;
        let mut dims = grad.dims().to_vec();
        let m = grad.elem_count() / n;
        let g = grad.contiguous()?.reshape((m, n))?.matmul(&self.w)?;
        *dims.last_mut().unwrap() = k;
        Ok(Some(g.reshape(dims)?))
    }
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

fn row_lse(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    max + sum.ln()
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
        let out: Vec<f32> = par(|| {
            x.par_chunks(v).zip(self.targets.par_iter()).map(|(row, &t)| row_lse(row) - row[t as usize]).collect()
        });
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let (n, v) = arg.dims2()?;
        let x = arg.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let g = grad.to_vec1::<f32>()?;
        use rayon::prelude::*;
        let mut out = vec![0f32; n * v];
        par(|| {
            out.par_chunks_mut(v).zip(x.par_chunks(v)).enumerate().for_each(|(i, (o, row))| {
                let lse = row_lse(row);
                for (oj, &xj) in o.iter_mut().zip(row) {
                    *oj = (xj - lse).exp() * g[i];
                }
                o[self.targets[i] as usize] -= g[i];
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

/// Runs a parallel kernel in Candle's thread pool (see [`gemm_abt`]).
fn par<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    candle_core::utils::with_threadpool(f)
}

fn cpu_f32(t: &Tensor) -> CResult<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

fn is_cpu_f32(t: &Tensor) -> bool {
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
        par(|| {
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
        par(|| {
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
        par(|| {
            y.par_chunks_mut(d).zip(x.par_chunks(d)).for_each(|(yr, xr)| {
                let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for (o, &v) in yr.iter_mut().zip(xr) {
                    *o = (v - max).exp();
                    sum += *o;
                }
                let inv = 1.0 / sum;
                yr.iter_mut().for_each(|o| *o *= inv);
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
        par(|| {
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
        par(|| {
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

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
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
        par(|| {
            y.par_chunks_mut(4096).zip(g.par_chunks(4096).zip(u.par_chunks(4096))).for_each(|(o, (gc, uc))| {
                for ((oj, &gv), &uv) in o.iter_mut().zip(gc).zip(uc) {
                    *oj = gv * sigmoid(gv) * uv;
                }
            })
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        use rayon::prelude::*;
        let g = cpu_f32(a)?;
        let u = cpu_f32(b)?;
        let gy = cpu_f32(grad)?;
        let mut ga = vec![0f32; g.len()];
        let mut gb = vec![0f32; g.len()];
        par(|| {
            ga.par_chunks_mut(4096)
                .zip(gb.par_chunks_mut(4096))
                .zip(g.par_chunks(4096).zip(u.par_chunks(4096)).zip(gy.par_chunks(4096)))
                .for_each(|((oa, ob), ((gc, uc), yc))| {
                    for i in 0..gc.len() {
                        let s = sigmoid(gc[i]);
                        let silu = gc[i] * s;
                        ob[i] = yc[i] * silu;
                        oa[i] = yc[i] * uc[i] * s * (1.0 + gc[i] * (1.0 - s));
                    }
                })
        });
        Ok((Some(Tensor::from_vec(ga, a.shape(), a.device())?), Some(Tensor::from_vec(gb, b.shape(), b.device())?)))
    }
}
