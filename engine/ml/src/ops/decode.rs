//! The attention of one decoding step: each row's new query over its KV-cache views.

use candle_core::{Layout, Tensor};

use super::lanes::softmax_in_place;
use super::pool::on_pool;
use super::{cpu_f32, is_cpu_f32, CResult};

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
