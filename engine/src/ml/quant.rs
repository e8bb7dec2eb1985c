//! Weight matrices kept in the GGUF's own block formats (Q4_1, Q8_0) beside their f32
//! dequantisation, for decoding steps. A decoding step multiplies a few rows by every
//! weight, so its speed is how fast the weights stream from memory: SmolLM2's weights are
//! 540 MB as f32 and 98 MB as stored. The few-rows kernel dequantises four weight rows at a
//! time into L1 with exactly the arithmetic of Candle's `dequantize` (`q as f32 * d + m`,
//! a multiply then an add, never fused), so its products are bit for bit those of the f32
//! weights: nothing about a sample changes but its speed.

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

/// Weights per block in both formats.
const BLOCK: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockFormat {
    /// 32 weights as `d: f16, m: f16, 16 bytes of nibbles`: weight `j` is the low nibble
    /// of byte `j` and weight `j + 16` its high nibble, each `q * d + m`.
    Q4_1,
    /// 32 weights as `d: f16, 32 signed bytes`, each `q * d`.
    Q8_0,
}

impl BlockFormat {
    fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q8_0 => 34,
        }
    }
}

/// A `[rows, cols]` weight matrix in a block format, row-major, each row a whole number of
/// blocks.
#[derive(Debug, Clone)]
pub struct QuantRows {
    format: BlockFormat,
    data: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl QuantRows {
    /// The matrix's blocks, or None for a format the kernel does not read (the model then
    /// uses its f32 weights alone).
    pub fn from_qtensor(q: &QTensor) -> candle_core::Result<Option<Self>> {
        let format = match q.dtype() {
            GgmlDType::Q4_1 => BlockFormat::Q4_1,
            GgmlDType::Q8_0 => BlockFormat::Q8_0,
            _ => return Ok(None),
        };
        let Ok((rows, cols)) = q.shape().dims2() else { return Ok(None) };
        if cols % BLOCK != 0 {
            return Ok(None);
        }
        let data = q.data()?.into_owned();
        if data.len() != rows * cols / BLOCK * format.block_bytes() {
            candle_core::bail!("{format:?} matrix {rows}x{cols} holds {} bytes", data.len());
        }
        Ok(Some(QuantRows { format, data, rows, cols }))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn row_bytes(&self) -> usize {
        self.cols / BLOCK * self.format.block_bytes()
    }

    /// The same matrix with its rows reordered: row `i` of the result is row `order[i]`.
    /// (GGUF stores llama's q/k rows permuted for interleaved rope; the loader undoes that
    /// on the f32 weights and must do the same here.)
    pub fn select_rows(&self, order: &[usize]) -> Self {
        assert_eq!(order.len(), self.rows, "a row order must name every row");
        let rb = self.row_bytes();
        let mut data = Vec::with_capacity(self.data.len());
        for &r in order {
            data.extend_from_slice(&self.data[r * rb..(r + 1) * rb]);
        }
        QuantRows { data, ..*self }
    }

    /// Rows `first..first + n` as f32 into `out` (`n * cols` values), exactly as Candle's
    /// `dequantize` computes them.
    pub fn dequantize_rows(&self, first: usize, n: usize, out: &mut [f32]) {
        let blocks = &self.data[first * self.row_bytes()..(first + n) * self.row_bytes()];
        let out = &mut out[..n * self.cols];
        #[cfg(target_arch = "x86_64")]
        if simd_available() {
            // SAFETY: AVX-512F and F16C were detected.
            return unsafe { self.dequantize_blocks_avx512(blocks, out) };
        }
        dequantize_blocks(self.format, blocks, out)
    }

    /// [`Self::dequantize_rows`] for callers already compiled for AVX-512 (the few-rows
    /// kernel), without the feature check.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and F16C ([`simd_available`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,f16c")]
    pub(crate) unsafe fn dequantize_rows_avx512(&self, first: usize, n: usize, out: &mut [f32]) {
        let blocks = &self.data[first * self.row_bytes()..(first + n) * self.row_bytes()];
        self.dequantize_blocks_avx512(blocks, &mut out[..n * self.cols])
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,f16c")]
    unsafe fn dequantize_blocks_avx512(&self, blocks: &[u8], out: &mut [f32]) {
        use std::arch::x86_64::*;
        // The scales' f16 -> f32 in one instruction (exact, as `half`'s conversion).
        let f16_at = |b: &[u8], at: usize| {
            let bits = u16::from_le_bytes([b[at], b[at + 1]]) as i32;
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)))
        };
        let bb = self.format.block_bytes();
        assert_eq!(blocks.len() / bb * BLOCK, out.len());
        match self.format {
            BlockFormat::Q4_1 => {
                for (b, o) in blocks.chunks_exact(bb).zip(out.chunks_exact_mut(BLOCK)) {
                    let d = _mm512_set1_ps(f16_at(b, 0));
                    let m = _mm512_set1_ps(f16_at(b, 2));
                    let q = _mm512_cvtepu8_epi32(_mm_loadu_si128(b.as_ptr().add(4) as *const __m128i));
                    let lo = _mm512_cvtepi32_ps(_mm512_and_si512(q, _mm512_set1_epi32(0x0F)));
                    let hi = _mm512_cvtepi32_ps(_mm512_srli_epi32::<4>(q));
                    // Multiply, then add: Candle's dequantize does not fuse them.
                    _mm512_storeu_ps(o.as_mut_ptr(), _mm512_add_ps(_mm512_mul_ps(lo, d), m));
                    _mm512_storeu_ps(o.as_mut_ptr().add(16), _mm512_add_ps(_mm512_mul_ps(hi, d), m));
                }
            }
            BlockFormat::Q8_0 => {
                for (b, o) in blocks.chunks_exact(bb).zip(out.chunks_exact_mut(BLOCK)) {
                    let d = _mm512_set1_ps(f16_at(b, 0));
                    let q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128(b.as_ptr().add(2) as *const __m128i));
                    let q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128(b.as_ptr().add(18) as *const __m128i));
                    _mm512_storeu_ps(o.as_mut_ptr(), _mm512_mul_ps(_mm512_cvtepi32_ps(q0), d));
                    _mm512_storeu_ps(o.as_mut_ptr().add(16), _mm512_mul_ps(_mm512_cvtepi32_ps(q1), d));
                }
            }
        }
    }
}

/// Whether the CPU has what [`QuantRows::dequantize_rows_avx512`] needs.
#[cfg(target_arch = "x86_64")]
pub(crate) fn simd_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("f16c")
}

/// The f16 at byte `at` of a block (little-endian, as GGUF stores it), as f32 (exact).
fn f16_at(block: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([block[at], block[at + 1]])).to_f32()
}

/// The portable dequantisation, term for term Candle's.
fn dequantize_blocks(format: BlockFormat, blocks: &[u8], out: &mut [f32]) {
    let bb = format.block_bytes();
    for (b, o) in blocks.chunks_exact(bb).zip(out.chunks_exact_mut(BLOCK)) {
        match format {
            BlockFormat::Q4_1 => {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                for j in 0..BLOCK / 2 {
                    o[j] = (b[4 + j] & 0x0F) as f32 * d + m;
                    o[j + BLOCK / 2] = (b[4 + j] >> 4) as f32 * d + m;
                }
            }
            BlockFormat::Q8_0 => {
                let d = f16_at(b, 0);
                for j in 0..BLOCK {
                    o[j] = b[2 + j] as i8 as f32 * d;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Both dequantisations (portable and AVX-512) give exactly Candle's f32 weights.
    #[test]
    fn dequantisation_is_candles_bit_for_bit() {
        let w = Tensor::randn(0f32, 0.05, (6, 96), &Device::Cpu).unwrap();
        for dt in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let q = QTensor::quantize(&w, dt).unwrap();
            let want = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let rows = QuantRows::from_qtensor(&q).unwrap().unwrap();
            let mut got = vec![0f32; 6 * 96];
            rows.dequantize_rows(0, 6, &mut got);
            assert_eq!(got, want, "{dt:?}");
            let mut portable = vec![0f32; 3 * 96];
            dequantize_blocks(rows.format, &rows.data[2 * rows.row_bytes()..5 * rows.row_bytes()], &mut portable);
            assert_eq!(portable, want[2 * 96..5 * 96], "{dt:?} portable");
            let back = rows.select_rows(&[5, 4, 3, 2, 1, 0]);
            let mut rev = vec![0f32; 96];
            back.dequantize_rows(1, 1, &mut rev);
            assert_eq!(rev, want[4 * 96..5 * 96], "{dt:?} reordered");
        }
    }
}
