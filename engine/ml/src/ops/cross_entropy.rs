//! The training loss over answer tokens (negative log-likelihood per row, fused with its
//! backward) and target log-probabilities for scoring.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, D};

use super::exp::exp_in_place;
use super::pool::on_pool;
use super::{contiguous_f32, f32_view, is_cpu_f32, CResult};

/// `log(sum(exp(row)))`, stable (the maximum is taken out first).
fn row_lse(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut buf = [0f32; 512];
    let mut sum = 0f32;
    for chunk in row.chunks(buf.len()) {
        let b = &mut buf[..chunk.len()];
        b.iter_mut().zip(chunk).for_each(|(o, &x)| *o = x - max);
        exp_in_place(b);
        sum += b.iter().sum::<f32>();
    }
    max + sum.ln()
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
        let out: Vec<f32> = on_pool(|| {
            x.par_chunks(v).zip(self.targets.par_iter()).map(|(row, &t)| row_lse(row) - row[t as usize]).collect()
        });
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let (n, v) = arg.dims2()?;
        let arg = arg.contiguous()?;
        let xv = f32_view(&arg)?;
        let x = xv.get();
        let (g, loss) = (grad.to_vec1::<f32>()?, res.to_vec1::<f32>()?);
        use rayon::prelude::*;
        let mut out = vec![0f32; n * v];
        on_pool(|| {
            out.par_chunks_mut(v).zip(x.par_chunks(v)).enumerate().for_each(|(i, (o, row))| {
                // The forward's loss is lse - x[target], so the row's lse comes back for free.
                let t = self.targets[i] as usize;
                let lse = loss[i] + row[t];
                o.iter_mut().zip(row).for_each(|(oj, &xj)| *oj = xj - lse);
                exp_in_place(o);
                o.iter_mut().for_each(|oj| *oj *= g[i]);
                o[t] -= g[i];
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
