//! How a forward pass uses a LoRA adapter: the layers' low-rank pairs, their scale, and (in
//! training) dropout. The model's forward and its merging read adapters through this view
//! alone, so `model` needs nothing from `lora` (which builds adapters for a model, trains
//! them and reads and writes PEFT's format, and so depends on `model`).

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::{Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

type CResult<T> = candle_core::Result<T>;

/// An adapter as one forward pass sees it; `lora::Lora` makes them (`Adapter::inference`,
/// `Adapter::training`). The dropout masks come from the given generator, drawn here
/// rather than by Candle so that runs are reproducible.
pub struct Adapter<'a> {
    /// Module path -> (A `[rank, in]`, B `[out, rank]`).
    pairs: &'a HashMap<String, (Var, Var)>,
    scale: f64,
    dropout: f64,
    dropout_rng: Option<&'a RefCell<ChaCha8Rng>>,
}

impl<'a> Adapter<'a> {
    pub(crate) fn new(
        pairs: &'a HashMap<String, (Var, Var)>,
        scale: f64,
        dropout: f64,
        dropout_rng: Option<&'a RefCell<ChaCha8Rng>>,
    ) -> Self {
        Adapter { pairs, scale, dropout, dropout_rng }
    }

    /// The layer's pair `(A, B, scale)` when this pass applies no dropout to it, which is
    /// when the projection and its adapter see the same input and can run as one op
    /// ([`super::ops::frozen_matmul_lora`]); None without a pair, or with dropout.
    pub fn undropped_pair(&self, path: &str) -> Option<(&Tensor, &Tensor, f64)> {
        let (a, b) = self.pairs.get(path)?;
        let dropout = self.dropout_rng.is_some() && self.dropout > 0.0;
        (!dropout).then(|| (a.as_tensor(), b.as_tensor(), self.scale))
    }

    /// The adapter's contribution `scale * dropout(x) A^T B^T`, or None if the layer has
    /// no adapter.
    pub fn delta(&self, path: &str, x: &Tensor) -> CResult<Option<Tensor>> {
        let Some((a, b)) = self.pairs.get(path) else {
            return Ok(None);
        };
        let p = self.dropout;
        let x = match self.dropout_rng {
            Some(rng) if p > 0.0 => {
                let mut rng = rng.borrow_mut();
                let keep = 1.0 / (1.0 - p);
                let mask: Vec<f32> =
                    (0..x.elem_count()).map(|_| if rng.gen::<f64>() < p { 0.0 } else { keep as f32 }).collect();
                (x * Tensor::from_vec(mask, x.shape(), x.device())?)?
            }
            _ => x.clone(),
        };
        let dims = x.dims().to_vec();
        let inp = *dims.last().expect("rank >= 1");
        let x2 = x.reshape((x.elem_count() / inp, inp))?;
        let h = x2.matmul(&a.as_tensor().t()?)?.matmul(&b.as_tensor().t()?)?;
        let mut out = dims;
        *out.last_mut().unwrap() = h.dim(1)?;
        Ok(Some((h * self.scale)?.reshape(out)?))
    }

    /// `scale * B A`, the change the adapter makes to a layer's weight (None: no pair).
    pub fn weight_delta(&self, path: &str) -> CResult<Option<Tensor>> {
        match self.pairs.get(path) {
            Some((a, b)) => Ok(Some((b.as_tensor().matmul(a.as_tensor())? * self.scale)?)),
            None => Ok(None),
        }
    }
}
