//! AVX-512 helpers shared by the decoding attention and the sampler: lane masks for a
//! row's last partial group, a row's maximum, softmax in place and `exp` in 16 lanes.

/// The lanes of the 16 values from `i` that lie inside `n` values: all 16 but at the end.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn tail_mask(n: usize, i: usize) -> std::arch::x86_64::__mmask16 {
    if n - i >= 16 {
        0xFFFF
    } else {
        (1 << (n - i)) - 1
    }
}

/// The largest of `x` (negative infinity for none), 16 lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn max_lanes(x: &[f32]) -> f32 {
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
pub(super) unsafe fn softmax_in_place(x: &mut [f32]) {
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

/// `e^x` in 16 lanes (softmax and sampling take it at `x <= 0`): `x = n ln 2 + r` with
/// `|r| <= ln 2 / 2`, `e^r` by its Taylor series to `r^7` (the next term is below 6e-9,
/// under f32's resolution), then scaled by `2^n` (`vscalefps`, which gives 0 below f32's
/// range and infinity above it). Within a few units in the last place of libm's `expf`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn exp_lanes(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
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
}
