//! The fused CPU kernels against their composed specifications: same values, same
//! gradients (through a random linear read-out so every output element matters).

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor, Var};
use ml::ops::{self, WeightRows};
use ml::quant::QuantRows;

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// Compares f and g on input x: outputs and the gradient of sum(out * r) w.r.t. x.
fn check(name: &str, shape: &[usize], f: impl Fn(&Tensor) -> Tensor, g: impl Fn(&Tensor) -> Tensor) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, shape, &dev).unwrap()).unwrap();
    let (a, b) = (f(x.as_tensor()), g(x.as_tensor()));
    assert!(max_diff(&a, &b) < 1e-5, "{name} forward differs by {}", max_diff(&a, &b));
    let r = Tensor::randn(0f32, 1.0, a.shape(), &dev).unwrap();
    let ga = (&a * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gb = (&b * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let (ga, gb) = (ga.get(x.as_tensor()).unwrap(), gb.get(x.as_tensor()).unwrap());
    assert!(max_diff(ga, gb) < 1e-4, "{name} gradient differs by {}", max_diff(ga, gb));
}

#[test]
fn fused_rms_norm_matches_composed() {
    let w = Tensor::randn(1f32, 0.1, 48, &Device::Cpu).unwrap();
    check(
        "rms_norm",
        &[3, 5, 48],
        |x| ops::rms_norm_fused(x, &w, 1e-5).unwrap(),
        |x| ops::rms_norm(x, &w, 1e-5).unwrap(),
    );
}

#[test]
fn fused_softmax_matches_composed() {
    check("softmax", &[2, 3, 7, 9], |x| ops::softmax_fused(x).unwrap(), |x| ops::softmax_last_dim(x).unwrap());
}

#[test]
fn fused_rope_matches_composed() {
    let cos = Tensor::randn(0f32, 1.0, (2, 1, 5, 4), &Device::Cpu).unwrap();
    let sin = Tensor::randn(0f32, 1.0, (2, 1, 5, 4), &Device::Cpu).unwrap();
    check("rope", &[2, 3, 5, 8], |x| ops::rope_fused(x, &cos, &sin).unwrap(), |x| ops::rope(x, &cos, &sin).unwrap());
}

#[test]
fn fused_silu_mul_matches_composed() {
    let u = Var::from_tensor(&Tensor::randn(0f32, 1.0, (4, 33), &Device::Cpu).unwrap()).unwrap();
    check(
        "silu_mul",
        &[4, 33],
        |x| ops::silu_mul_fused(x, u.as_tensor()).unwrap(),
        |x| (x.silu().unwrap() * u.as_tensor()).unwrap(),
    );
    // And the gradient with respect to the second operand.
    let g = Var::from_tensor(&Tensor::randn(0f32, 1.0, (4, 33), &Device::Cpu).unwrap()).unwrap();
    let a = ops::silu_mul_fused(g.as_tensor(), u.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
    let b = (g.as_tensor().silu().unwrap() * u.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(max_diff(a.get(u.as_tensor()).unwrap(), b.get(u.as_tensor()).unwrap()) < 1e-5);
}

#[test]
fn frozen_matmul_and_cross_entropy_match_candle() {
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 1.0, (11, 16), &dev).unwrap();
    check(
        "frozen_matmul",
        &[2, 3, 16],
        |x| ops::frozen_matmul(x, &w).unwrap(),
        |x| x.broadcast_matmul(&w.t().unwrap()).unwrap(),
    );
    let targets = [1u32, 4, 10, 0, 7];
    check(
        "cross_entropy",
        &[5, 11],
        |x| ops::cross_entropy_rows(x, &targets).unwrap(),
        |x| ops::cross_entropy_rows_plain(x, &targets).unwrap(),
    );
}

/// The projection fused with its LoRA pair gives the composed values and the gradients of
/// the input and of both adapter matrices, for row counts on both sides of the few-rows
/// kernel's limit.
#[test]
fn frozen_matmul_lora_matches_composed() {
    let dev = Device::Cpu;
    // Scales like a trained layer's, so outputs stay near 1 and the absolute tolerances of
    // `check` mean a few units in the last place (with unit weights outputs reach ~100).
    let w = Tensor::randn(0f32, 0.2, (20, 32), &dev).unwrap();
    let a = Var::from_tensor(&Tensor::randn(0f32, 0.2, (4, 32), &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::randn(0f32, 0.2, (20, 4), &dev).unwrap()).unwrap();
    let (at, bt) = (a.as_tensor(), b.as_tensor());
    for shape in [[1, 3, 32], [2, 70, 32]] {
        let fused = |x: &Tensor| ops::frozen_matmul_lora(x, &w, None, at, bt, 2.5).unwrap();
        let composed = |x: &Tensor| {
            let delta = x.broadcast_matmul(&at.t().unwrap()).unwrap().broadcast_matmul(&bt.t().unwrap()).unwrap();
            (x.broadcast_matmul(&w.t().unwrap()).unwrap() + (delta * 2.5).unwrap()).unwrap()
        };
        check("frozen_matmul_lora", &shape, fused, composed);
        let x = Tensor::randn(0f32, 1.0, &shape, &dev).unwrap();
        let r = Tensor::randn(0f32, 1.0, (shape[0], shape[1], 20), &dev).unwrap();
        let gf = (fused(&x) * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (composed(&x) * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("a", at), ("b", bt)] {
            let d = max_diff(gf.get(v).unwrap(), gc.get(v).unwrap());
            assert!(d < 1e-3, "gradient of {name} differs by {d}");
        }
        // A plain input (the first layer's) gets no gradient: it is not even computed.
        assert!(gf.get(&x).is_none(), "an input that depends on no variable got a gradient");
    }
}

/// Attention as one op gives the composed values and the gradients of queries, keys and
/// values: grouped heads, more keys than queries (a cache), padded rows, a mask shared by
/// every row, and no mask.
#[test]
fn fused_attention_matches_composed() {
    use ml::attention::{attention, attention_composed};
    use ml::model::causal_mask;
    let dev = Device::Cpu;
    let var = |shape: &[usize]| Var::from_tensor(&Tensor::randn(0f32, 1.0, shape, &dev).unwrap()).unwrap();
    let (q, k, v) = (var(&[2, 6, 5, 8]), var(&[2, 2, 7, 8]), var(&[2, 2, 7, 8]));
    let padded = causal_mask(&[vec![true; 7], vec![false, false, true, true, true, true, true]], 5, &dev).unwrap();
    let shared = causal_mask(&[vec![true; 7]], 5, &dev).unwrap();
    for mask in [Some(&padded), Some(&shared), None] {
        let (qt, kt, vt) = (q.as_tensor(), k.as_tensor(), v.as_tensor());
        let fused = attention(qt, kt, vt, mask, 0.35).unwrap();
        let composed = attention_composed(qt, kt, vt, mask, 0.35).unwrap();
        assert_eq!(fused.dims(), [2, 5, 48]);
        let d = max_diff(&fused, &composed);
        assert!(d < 1e-5, "attention forward differs by {d}");
        let r = Tensor::randn(0f32, 1.0, fused.shape(), &dev).unwrap();
        let gf = (&fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (&composed * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, t) in [("q", qt), ("k", kt), ("v", vt)] {
            let d = max_diff(gf.get(t).unwrap(), gc.get(t).unwrap());
            assert!(d < 1e-4, "attention gradient of {name} differs by {d}");
        }
        // The same graph can be differentiated again (the op keeps its probabilities).
        let again = (&fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(max_diff(again.get(qt).unwrap(), gf.get(qt).unwrap()), 0.0);
    }
}

/// The few-rows kernel (decoding) agrees with Candle's matmul for every row count it takes
/// and beyond, and a row's result does not depend on the other rows of the batch.
#[test]
fn few_rows_matmul_matches_and_is_batch_independent() {
    let dev = Device::Cpu;
    // 102 weight rows: two tasks of the kernel, each ending in rows outside a group of 4.
    let (n, k) = (102, 576);
    let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (ops::FEW_ROWS + 1, k), &dev).unwrap();
    for m in [1, 2, 3, 5, 7, 8, 13, 16, 17, 40, 64, 65] {
        let xm = x.narrow(0, 0, m).unwrap();
        let got = ops::frozen_matmul(&xm, &w).unwrap();
        let want = xm.matmul(&w.t().unwrap()).unwrap();
        assert!(max_diff(&got, &want) < 1e-3, "m={m}: {}", max_diff(&got, &want));
    }
    let wv = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let xv = x.narrow(0, 0, ops::FEW_ROWS).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let all = ops::few_rows_abt(&xv, WeightRows::F32(&wv), ops::FEW_ROWS, n, k);
    if let Some(all) = all {
        for r in 0..ops::FEW_ROWS {
            let one = ops::few_rows_abt(&xv[r * k..(r + 1) * k], WeightRows::F32(&wv), 1, n, k).unwrap();
            assert_eq!(&all[r * n..(r + 1) * n], one.as_slice(), "row {r}");
        }
    } else {
        eprintln!("no AVX-512 here: frozen_matmul used gemm for every row count");
    }
    let more = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(
        ops::few_rows_abt(&more, WeightRows::F32(&wv), ops::FEW_ROWS + 1, n, k).is_none(),
        "more rows than FEW_ROWS go to gemm"
    );
}

/// Weights in a GGUF block format (Q4_1, Q8_0) give the few-rows kernel exactly the
/// products of their f32 dequantisation, so a model that decodes from its stored blocks
/// samples the same tokens; beyond FEW_ROWS rows the f32 weights are used.
#[test]
fn block_format_weights_give_the_same_products_as_f32() {
    let dev = Device::Cpu;
    let (n, k) = (70, 96);
    let w = Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (ops::FEW_ROWS + 1, k), &dev).unwrap();
    for dt in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let q = QTensor::quantize(&w, dt).unwrap();
        let wf = q.dequantize(&dev).unwrap();
        let blocks = Arc::new(QuantRows::from_qtensor(&q).unwrap().expect("a format the kernel reads"));
        for m in [1, 3, 4, 16, 40, ops::FEW_ROWS, ops::FEW_ROWS + 1] {
            let xm = x.narrow(0, 0, m).unwrap();
            let from_blocks = ops::frozen_matmul_quant(&xm, &wf, Some(&blocks)).unwrap();
            let from_f32 = ops::frozen_matmul(&xm, &wf).unwrap();
            assert_eq!(max_diff(&from_blocks, &from_f32), 0.0, "{dt:?}, m={m}");
        }
    }
}

/// Decoding-step attention (one query per row, keys and values as views into a larger
/// cache buffer, a padding mask) agrees with attention spelled out in tensor ops: each
/// query head h reads kv head h / rep. Key counts below, at and past 16 (the kernel sums
/// 16 keys' dot products at once) and head sizes of 64 (SmolLM2) and 128 (Qwen2, Llama).
/// On a CPU without AVX-512 the kernel must refuse (the model then composes tensor ops).
#[test]
fn decode_attention_matches_composed() {
    let dev = Device::Cpu;
    for (hd, s) in [(64, 7), (64, 16), (64, 37), (128, 21)] {
        let (b, nh, nkv, cap) = (3, 6, 2, s + 4);
        let q = Tensor::randn(0f32, 1.0, (b, nh, 1, hd), &dev).unwrap();
        let kbuf = Tensor::randn(0f32, 1.0, (b, nkv, cap, hd), &dev).unwrap();
        let vbuf = Tensor::randn(0f32, 1.0, (b, nkv, cap, hd), &dev).unwrap();
        let (k, v) = (kbuf.narrow(2, 0, s).unwrap(), vbuf.narrow(2, 0, s).unwrap());
        assert!(!k.is_contiguous(), "the test is about views into a cache");
        // Row 1 has two padding keys at the front.
        let mut m = vec![0f32; b * s];
        m[s] = -1e9;
        m[s + 1] = -1e9;
        let mask = Tensor::from_vec(m, (b, 1, 1, s), &dev).unwrap();
        let scale = 1.0 / (hd as f64).sqrt();
        if !ops::decode_attention_applies(&q) {
            // No AVX-512 here: the model takes the composed path, and the kernel says so.
            let err = ops::decode_attention(&q, &k, &v, Some(&mask), scale).unwrap_err().to_string();
            assert!(err.contains("AVX-512"), "{err}");
            eprintln!("decode_attention_matches_composed: this CPU has no AVX-512; the kernel is not compared");
            return;
        }
        let got = ops::decode_attention(&q, &k, &v, Some(&mask), scale).unwrap();
        let rep = nh / nkv;
        let kv_of = |t: &Tensor| {
            let heads: Vec<Tensor> = (0..nh).map(|h| t.narrow(1, h / rep, 1).unwrap()).collect();
            Tensor::cat(&heads, 1).unwrap().contiguous().unwrap()
        };
        let (kr, vr) = (kv_of(&k), kv_of(&v));
        let att = (q.affine(scale, 0.0).unwrap().matmul(&kr.t().unwrap()).unwrap().broadcast_add(&mask)).unwrap();
        let want = ops::softmax_last_dim(&att).unwrap().matmul(&vr).unwrap();
        let want = want.transpose(1, 2).unwrap().reshape((b, 1, nh * hd)).unwrap();
        assert!(max_diff(&got, &want) < 1e-5, "hd {hd}, {s} keys: {}", max_diff(&got, &want));
    }
}
