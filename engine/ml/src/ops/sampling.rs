//! The sampler's weights for one row of logits.

#[cfg(target_arch = "x86_64")]
use super::lanes::{exp_lanes, max_lanes, tail_mask};

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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

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
