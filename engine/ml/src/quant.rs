//! Weight matrices kept in the GGUF's own block formats (Q4_1, Q8_0) beside their f32
//! dequantisation, for decoding steps. A decoding step multiplies a few rows by every
//! weight, so its speed is how fast the weights stream from memory: SmolLM2's weights are
//! 540 MB as f32, 98 MB as stored and 112 MB as kept here (the scales widened to f32). The
//! few-rows kernel dequantises four weight rows at a time into L1 with exactly the
//! arithmetic of Candle's `dequantize` (`q as f32 * d + m`, a multiply then an add, never
//! fused), so its products are bit for bit those of the f32 weights: nothing about a
//! sample changes but its speed.

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
    /// Bytes of one block as the GGUF stores it.
    fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q8_0 => 34,
        }
    }

    /// The f16 scales at the front of a block: `d, m` or `d`.
    fn scales(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 2,
            BlockFormat::Q8_0 => 1,
        }
    }

    /// Bytes of quantised values in a block.
    fn quant_bytes(self) -> usize {
        self.block_bytes() - 2 * self.scales()
    }
}

/// A `[rows, cols]` weight matrix in a block format, row-major, each row a whole number of
/// blocks. The blocks are split on loading: their scales, widened to f32 (exact), in one
/// array and their quantised values in another. The kernel then broadcasts a scale
/// straight from memory instead of converting two f16 per block, which was a third of the
/// dequantisation's instructions. (That is 4 bytes more per 32 weights than the GGUF's
/// layout: 16 MB for SmolLM2.)
#[derive(Debug, Clone)]
pub struct QuantRows {
    format: BlockFormat,
    /// `format.scales()` per block, in block order.
    scales: Vec<f32>,
    /// `format.quant_bytes()` per block, in block order.
    quants: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl QuantRows {
    /// Bytes held by the blocks (scales and packed quants).
    pub fn memory_bytes(&self) -> usize {
        self.scales.len() * std::mem::size_of::<f32>() + self.quants.len()
    }

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
        let data = q.data()?;
        let blocks = rows * cols / BLOCK;
        if data.len() != blocks * format.block_bytes() {
            candle_core::bail!("{format:?} matrix {rows}x{cols} holds {} bytes", data.len());
        }
        let mut scales = Vec::with_capacity(blocks * format.scales());
        let mut quants = Vec::with_capacity(blocks * format.quant_bytes());
        for b in data.chunks_exact(format.block_bytes()) {
            let (head, values) = b.split_at(2 * format.scales());
            scales.extend(head.chunks_exact(2).map(|h| f16::from_bits(u16::from_le_bytes([h[0], h[1]])).to_f32()));
            quants.extend_from_slice(values);
        }
        Ok(Some(QuantRows { format, scales, quants, rows, cols }))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn blocks_per_row(&self) -> usize {
        self.cols / BLOCK
    }

    /// The scales and quantised values of rows `first..first + n`.
    fn row_parts(&self, first: usize, n: usize) -> (&[f32], &[u8]) {
        let (b0, b1) = (first * self.blocks_per_row(), (first + n) * self.blocks_per_row());
        let (s, q) = (self.format.scales(), self.format.quant_bytes());
        (&self.scales[b0 * s..b1 * s], &self.quants[b0 * q..b1 * q])
    }

    /// The same matrix with its rows reordered: row `i` of the result is row `order[i]`.
    /// (GGUF stores llama's q/k rows permuted for interleaved rope; the loader undoes that
    /// on the f32 weights and must do the same here.)
    pub fn select_rows(&self, order: &[usize]) -> Self {
        assert_eq!(order.len(), self.rows, "a row order must name every row");
        let mut scales = Vec::with_capacity(self.scales.len());
        let mut quants = Vec::with_capacity(self.quants.len());
        for &r in order {
            let (s, q) = self.row_parts(r, 1);
            scales.extend_from_slice(s);
            quants.extend_from_slice(q);
        }
        QuantRows { scales, quants, ..*self }
    }

    /// Rows `first..first + n` as f32 into `out` (`n * cols` values), exactly as Candle's
    /// `dequantize` computes them.
    pub fn dequantize_rows(&self, first: usize, n: usize, out: &mut [f32]) {
        let out = &mut out[..n * self.cols];
        #[cfg(target_arch = "x86_64")]
        if simd_available() {
            // SAFETY: AVX-512F was detected.
            return unsafe { self.dequantize_rows_avx512(first, n, out) };
        }
        let (scales, quants) = self.row_parts(first, n);
        dequantize_blocks(self.format, scales, quants, out)
    }

    /// [`Self::dequantize_rows`] for callers already compiled for AVX-512 (the few-rows
    /// kernel), without the feature check.
    ///
    /// # Safety
    /// The CPU must support AVX-512F ([`simd_available`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn dequantize_rows_avx512(&self, first: usize, n: usize, out: &mut [f32]) {
        use std::arch::x86_64::*;
        let (scales, quants) = self.row_parts(first, n);
        let out = &mut out[..n * self.cols];
        let blocks = out.len() / BLOCK;
        assert!(scales.len() == blocks * self.format.scales() && quants.len() == blocks * self.format.quant_bytes());
        let (s, q, o) = (scales.as_ptr(), quants.as_ptr(), out.as_mut_ptr());
        match self.format {
            BlockFormat::Q4_1 => {
                let iota = _mm512_setr_ps(0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.);
                for b in 0..blocks {
                    // The block's 16 possible weights, `q * d + m` for q = 0..15 (multiply,
                    // then add: Candle's dequantize does not fuse them); each nibble then
                    // picks its weight from this table, one permute per 16 weights.
                    let d = _mm512_set1_ps(*s.add(2 * b));
                    let m = _mm512_set1_ps(*s.add(2 * b + 1));
                    let table = _mm512_add_ps(_mm512_mul_ps(iota, d), m);
                    let nib = _mm512_cvtepu8_epi32(_mm_loadu_si128(q.add(16 * b) as *const __m128i));
                    // The permute reads only an index's low four bits: the low nibble as is.
                    _mm512_storeu_ps(o.add(BLOCK * b), _mm512_permutexvar_ps(nib, table));
                    _mm512_storeu_ps(o.add(BLOCK * b + 16), _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(nib), table));
                }
            }
            BlockFormat::Q8_0 => {
                for b in 0..blocks {
                    let d = _mm512_set1_ps(*s.add(b));
                    let q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(32 * b) as *const __m128i));
                    let q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(32 * b + 16) as *const __m128i));
                    _mm512_storeu_ps(o.add(BLOCK * b), _mm512_mul_ps(_mm512_cvtepi32_ps(q0), d));
                    _mm512_storeu_ps(o.add(BLOCK * b + 16), _mm512_mul_ps(_mm512_cvtepi32_ps(q1), d));
                }
            }
        }
    }
}

/// Whether the CPU has what [`QuantRows::dequantize_rows_avx512`] needs.
#[cfg(target_arch = "x86_64")]
pub(crate) fn simd_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// The portable dequantisation, term for term Candle's.
fn dequantize_blocks(format: BlockFormat, scales: &[f32], quants: &[u8], out: &mut [f32]) {
    let (s, qb) = (format.scales(), format.quant_bytes());
    for ((sc, q), o) in scales.chunks_exact(s).zip(quants.chunks_exact(qb)).zip(out.chunks_exact_mut(BLOCK)) {
        match format {
            BlockFormat::Q4_1 => {
                let (d, m) = (sc[0], sc[1]);
                for j in 0..BLOCK / 2 {
                    o[j] = (q[j] & 0x0F) as f32 * d + m;
                    o[j + BLOCK / 2] = (q[j] >> 4) as f32 * d + m;
                }
            }
            BlockFormat::Q8_0 => {
                for j in 0..BLOCK {
                    o[j] = q[j] as i8 as f32 * sc[0];
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
            let (scales, quants) = rows.row_parts(2, 3);
            dequantize_blocks(rows.format, scales, quants, &mut portable);
            assert_eq!(portable, want[2 * 96..5 * 96], "{dt:?} portable");
            let back = rows.select_rows(&[5, 4, 3, 2, 1, 0]);
            let mut rev = vec![0f32; 96];
            back.dequantize_rows(1, 1, &mut rev);
            assert_eq!(rev, want[4 * 96..5 * 96], "{dt:?} reordered");
        }
    }
}
