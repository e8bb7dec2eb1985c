//! RMSNorm, softmax, rotary embedding and the SiLU gate. The composed versions (basic
//! Candle ops, so gradients flow) are the specification and what other devices run; the
//! fused CPU kernels each replace a chain of small Candle ops (one pass over memory instead
//! of five to ten, and no intermediate tensors kept for the backward pass) and are tested
//! against them, values and gradients.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, D};

use super::exp::exp_in_place;
use super::pool::on_pool;
use super::{contiguous_f32, cpu_f32, f32_view, is_cpu_f32, CResult};

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
