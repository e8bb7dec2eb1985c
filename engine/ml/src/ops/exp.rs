//! `exp` for the element-wise kernels (softmax, cross-entropy, SiLU), in a form that
//! compiles to vector code.

/// `exp` for the element-wise kernels (softmax, cross-entropy, SiLU): range reduction to
/// `2^n e^r` with `|r| <= ln2 / 2` and a degree-6 polynomial for `e^r`, within 3.6e-7
/// relative of the true value (a few units in the last place) from -87 to 88, exactly 0
/// below `ln(f32::MIN_POSITIVE)` (masked scores), and `e^88` (~1.7e38) above 88, where
/// the kernels only take `1 / (1 + e^x)`. Every step has a SIMD form (no calls, a select
/// rather than a branch), so the loops of [`exp_in_place`] compile to vector code: libm's
/// scalar `expf` was the largest cost of a training step after gemm (5 % of its CPU
/// time, 2026-12-04).
#[inline(always)]
pub(super) fn exp_poly(x: f32) -> f32 {
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

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
}
