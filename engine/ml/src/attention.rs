//! Attention over a sequence (training, scoring, prompt prefill): grouped-query attention
//! with an additive mask, as one op with its own backward on the CPU, and the composition
//! of Candle ops it must agree with (its specification, and what other devices run).
//! On CPUs with AVX-512, decoding steps (one query per row) take their own kernel,
//! `ops::decode_attention`; elsewhere they come here too.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::ops::{self, gemm_into, on_pool, Mat};

type CResult<T> = candle_core::Result<T>;

/// Attention of queries `[b, heads, t, hd]` over keys and values `[b, kv_heads, s, hd]`
/// with an additive mask `[b or 1, 1, t, s]` (None: every key visible), as
/// `[b, t, heads * hd]`. Query head `h` reads kv head `h / (heads / kv_heads)`, as in
/// Hugging Face's `repeat_kv`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, scale: f64) -> CResult<Tensor> {
    if !(ops::is_cpu_f32(q) && ops::is_cpu_f32(k) && ops::is_cpu_f32(v)) {
        return attention_composed(q, k, v, mask, scale);
    }
    let (b, nh, t, hd) = q.dims4()?;
    let (kb, nkv, s, khd) = k.dims4()?;
    if kb != b || khd != hd || v.dims() != k.dims() || nkv == 0 || nh % nkv != 0 {
        candle_core::bail!("attention: queries {:?}, keys {:?}, values {:?}", q.dims(), k.dims(), v.dims());
    }
    let mask = match mask {
        Some(m) => {
            let mb = m.dim(0)?;
            if m.dims() != [mb, 1, t, s] || (mb != 1 && mb != b) {
                candle_core::bail!("attention: mask {:?} for {b} rows of {t} queries over {s} keys", m.dims());
            }
            Some((ops::cpu_f32(m)?, mb))
        }
        None => None,
    };
    // Only a pass that trains keeps the probabilities for the backward.
    let keep = q.track_op() || k.track_op() || v.track_op();
    let op = Attention { scale: scale as f32, mask, keep, probs: Mutex::new(Vec::new()) };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

/// [`attention`] composed of Candle ops. The query heads that share a kv head are stacked
/// along the row axis and meet that head's keys in one matmul, without copying keys and
/// values for every query head.
pub fn attention_composed(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, scale: f64) -> CResult<Tensor> {
    let (b, nh, t, hd) = q.dims4()?;
    let (nkv, s) = (k.dim(1)?, k.dim(2)?);
    let rep = nh / nkv;
    let qg = (q * scale)?.reshape((b, nkv, rep * t, hd))?;
    let mut att = qg.matmul(&k.t()?)?;
    if let Some(m) = mask {
        att = att.reshape((b, nkv, rep, t, s))?.broadcast_add(&m.unsqueeze(2)?)?.reshape((b, nkv, rep * t, s))?;
    }
    let att = ops::softmax_fused(&att)?;
    att.matmul(v)?.reshape((b, nh, t, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, t, nh * hd))
}

/// The work splits into one task per (row, kv head): the `rep` query heads of the group
/// are consecutive in `q`, so their queries form one `[rep * t, hd]` matrix, and every
/// task writes its own blocks of the query, key and value gradients.
struct Attention {
    scale: f32,
    /// The mask's values and its batch size (1: the same mask for every row).
    mask: Option<(Vec<f32>, usize)>,
    /// Whether to keep the probabilities for the backward pass.
    keep: bool,
    /// Per task, the softmax probabilities `[rep * t, s]` of the forward pass, which the
    /// backward needs and would otherwise recompute (a second `Q K^T` and softmax).
    probs: Mutex<Vec<Vec<f32>>>,
}

/// Sizes of one call: `b` rows, `nh` query heads, `nkv` kv heads, `t` queries, `s` keys,
/// `hd` values per head.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    nh: usize,
    nkv: usize,
    t: usize,
    s: usize,
    hd: usize,
}

impl Dims {
    fn of(q: &[usize], k: &[usize]) -> CResult<Self> {
        match (q, k) {
            ([b, nh, t, hd], [_, nkv, s, _]) => Ok(Dims { b: *b, nh: *nh, nkv: *nkv, t: *t, s: *s, hd: *hd }),
            _ => candle_core::bail!("attention: queries {q:?}, keys {k:?}"),
        }
    }

    fn rep(&self) -> usize {
        self.nh / self.nkv
    }

    fn tasks(&self) -> usize {
        self.b * self.nkv
    }

    /// Task `i`'s queries (or query gradients) in a `[b, nh, t, hd]` buffer.
    fn q_block<'a>(&self, q: &'a [f32], i: usize) -> Mat<'a> {
        let n = self.rep() * self.t * self.hd;
        Mat::rows(&q[i * n..(i + 1) * n], self.rep() * self.t, self.hd)
    }

    /// Task `i`'s keys or values in a `[b, nkv, s, hd]` buffer.
    fn kv_block<'a>(&self, k: &'a [f32], i: usize) -> Mat<'a> {
        let n = self.s * self.hd;
        Mat::rows(&k[i * n..(i + 1) * n], self.s, self.hd)
    }

    /// Where row `r` of task `i`'s `[rep * t, hd]` block lies in a `[b, t, nh * hd]` buffer.
    fn out_offset(&self, i: usize, r: usize) -> usize {
        let (bi, g) = (i / self.nkv, i % self.nkv);
        let (h, ti) = (g * self.rep() + r / self.t, r % self.t);
        ((bi * self.t + ti) * self.nh + h) * self.hd
    }
}

impl Attention {
    /// Task `i`'s probabilities `softmax(scale Q K^T + mask)`, `[rep * t, s]`.
    fn probs(&self, d: Dims, q: &[f32], k: &[f32], i: usize) -> Vec<f32> {
        let rt = d.rep() * d.t;
        let mut p = vec![0f32; rt * d.s];
        gemm_into(&mut p, false, d.q_block(q, i), d.kv_block(k, i).t(), self.scale, false);
        for (r, row) in p.chunks_mut(d.s).enumerate() {
            if let Some((m, mb)) = &self.mask {
                let bi = if *mb == 1 { 0 } else { i / d.nkv };
                let off = (bi * d.t + r % d.t) * d.s;
                row.iter_mut().zip(&m[off..off + d.s]).for_each(|(x, m)| *x += m);
            }
            ops::softmax_row(row);
        }
        p
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "attention"
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
        let (q, k, v) = (ops::contiguous_f32(s1, l1)?, ops::contiguous_f32(s2, l2)?, ops::contiguous_f32(s3, l3)?);
        let d = Dims::of(l1.dims(), l2.dims())?;
        let rt = d.rep() * d.t;
        let blocks: Vec<(Vec<f32>, Vec<f32>)> = on_pool(|| {
            (0..d.tasks())
                .into_par_iter()
                .map(|i| {
                    let p = self.probs(d, q, k, i);
                    let mut o = vec![0f32; rt * d.hd];
                    gemm_into(&mut o, false, Mat::rows(&p, rt, d.s), d.kv_block(v, i), 1.0, false);
                    (o, if self.keep { p } else { Vec::new() })
                })
                .collect()
        });
        let mut out = vec![0f32; d.b * d.t * d.nh * d.hd];
        let mut probs = Vec::with_capacity(if self.keep { blocks.len() } else { 0 });
        for (i, (o, p)) in blocks.into_iter().enumerate() {
            for (r, row) in o.chunks(d.hd).enumerate() {
                let at = d.out_offset(i, r);
                out[at..at + d.hd].copy_from_slice(row);
            }
            if self.keep {
                probs.push(p);
            }
        }
        *self.probs.lock().expect("not poisoned") = probs;
        Ok((CpuStorage::F32(out), Shape::from((d.b, d.t, d.nh * d.hd))))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = Dims::of(q.dims(), k.dims())?;
        // Borrowed, not taken: a graph may be differentiated more than once.
        let guard = self.probs.lock().expect("not poisoned");
        let probs: &[Vec<f32>] = &guard;
        if probs.len() != d.tasks() {
            candle_core::bail!("attention: backward without the forward's probabilities");
        }
        // The arguments are the contiguous tensors the forward ran on; read them in place.
        let grad = grad.contiguous()?;
        let (qv, kv, vv, gv) = (ops::f32_view(q)?, ops::f32_view(k)?, ops::f32_view(v)?, ops::f32_view(&grad)?);
        let (qv, kv, vv, gv) = (qv.get(), kv.get(), vv.get(), gv.get());
        let rt = d.rep() * d.t;
        let blocks: Vec<[Vec<f32>; 3]> = on_pool(|| {
            probs
                .par_iter()
                .enumerate()
                .map(|(i, p)| {
                    // The output gradient of the group's heads, as a [rep * t, hd] block.
                    let mut go = vec![0f32; rt * d.hd];
                    for (r, row) in go.chunks_mut(d.hd).enumerate() {
                        let at = d.out_offset(i, r);
                        row.copy_from_slice(&gv[at..at + d.hd]);
                    }
                    let go = Mat::rows(&go, rt, d.hd);
                    let (kb, vb) = (d.kv_block(kv, i), d.kv_block(vv, i));
                    // dS = P * (dP - rowsum(dP * P)) with dP = dO V^T, in place.
                    let mut ds = vec![0f32; rt * d.s];
                    gemm_into(&mut ds, false, go, vb.t(), 1.0, false);
                    for (dr, pr) in ds.chunks_mut(d.s).zip(p.chunks(d.s)) {
                        let dot: f32 = dr.iter().zip(pr).map(|(a, b)| a * b).sum();
                        dr.iter_mut().zip(pr).for_each(|(x, p)| *x = p * (*x - dot));
                    }
                    let (ds, p) = (Mat::rows(&ds, rt, d.s), Mat::rows(p, rt, d.s));
                    let mut gq = vec![0f32; rt * d.hd];
                    let mut gk = vec![0f32; d.s * d.hd];
                    let mut gvv = vec![0f32; d.s * d.hd];
                    gemm_into(&mut gq, false, ds, kb, self.scale, false);
                    gemm_into(&mut gk, false, ds.t(), d.q_block(qv, i), self.scale, false);
                    gemm_into(&mut gvv, false, p.t(), go, 1.0, false);
                    [gq, gk, gvv]
                })
                .collect()
        });
        // Task blocks in task order are exactly the [b, heads, ., hd] gradients.
        let mut grads = [Vec::new(), Vec::new(), Vec::new()];
        for block in blocks {
            for (g, part) in grads.iter_mut().zip(block) {
                g.extend_from_slice(&part);
            }
        }
        let [gq, gk, gvv] = grads;
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(gq, q.shape(), dev)?),
            Some(Tensor::from_vec(gk, k.shape(), dev)?),
            Some(Tensor::from_vec(gvv, v.shape(), dev)?),
        ))
    }
}
