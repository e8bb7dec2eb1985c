//! LoRA adapters: their configuration, deterministic initialisation, the low-rank delta a
//! linear layer adds, and saving/loading in PEFT's on-disk format
//! (`adapter_config.json` + `adapter_model.safetensors`) so other tools can load them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use super::adapter::Adapter;
use super::model::Model;
use super::{bad_model, io_err, MlError, Result};

pub const ALL_TARGETS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    /// Module names (the last path component, e.g. `q_proj`) that get an adapter.
    pub target_modules: Vec<String>,
    /// Rank-stabilised LoRA: scale by `alpha / sqrt(rank)` instead of `alpha / rank`.
    pub use_rslora: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: 8,
            alpha: 16.0,
            dropout: 0.0,
            target_modules: ALL_TARGETS.iter().map(|s| s.to_string()).collect(),
            use_rslora: false,
        }
    }
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(MlError::Input("LoRA rank must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(MlError::Input("LoRA dropout must be in [0, 1)".into()));
        }
        if let Some(t) = self.target_modules.iter().find(|t| !ALL_TARGETS.contains(&t.as_str())) {
            return Err(MlError::Input(format!(
                "unknown LoRA target module {t:?} (known: {})",
                ALL_TARGETS.join(", ")
            )));
        }
        if self.target_modules.is_empty() {
            return Err(MlError::Input("LoRA needs at least one target module".into()));
        }
        Ok(())
    }
}

/// A trained or fresh adapter. Its `VarMap` holds only the LoRA tensors (under their PEFT
/// names), so an optimiser over `varmap.all_vars()` can never touch the base weights.
pub struct Lora {
    pub config: LoraConfig,
    pub varmap: VarMap,
    /// Module path -> (A `[rank, in]`, B `[out, rank]`).
    pairs: HashMap<String, (Var, Var)>,
}

fn peft_key(path: &str, ab: &str) -> String {
    format!("base_model.model.{path}.lora_{ab}.weight")
}

fn targeted(cfg: &LoraConfig, path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    cfg.target_modules.iter().any(|t| t == last)
}

impl Lora {
    /// A fresh adapter as PEFT initialises one: A Kaiming-uniform (bound `1/sqrt(in)`),
    /// B zero, so the adapted model starts equal to the base. Seeded, so reproducible.
    pub fn new(model: &Model, config: &LoraConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let varmap = VarMap::new();
        let mut pairs = HashMap::new();
        let dev = model.device();
        for lin in model.linears() {
            if !targeted(config, &lin.path) {
                continue;
            }
            let (out, inp) = lin.weight.dims2()?;
            let bound = 1.0 / (inp as f64).sqrt();
            let a: Vec<f32> = (0..config.rank * inp).map(|_| rng.gen_range(-bound..bound) as f32).collect();
            let a = Var::from_tensor(&Tensor::from_vec(a, (config.rank, inp), dev)?)?;
            let b = Var::from_tensor(&Tensor::zeros((out, config.rank), DType::F32, dev)?)?;
            pairs.insert(lin.path.clone(), (a, b));
        }
        let lora = Lora { config: config.clone(), varmap, pairs };
        lora.sync_varmap();
        Ok(lora)
    }

    fn sync_varmap(&self) {
        let mut data = self.varmap.data().lock().expect("varmap lock");
        for (path, (a, b)) in &self.pairs {
            data.insert(peft_key(path, "A"), a.clone());
            data.insert(peft_key(path, "B"), b.clone());
        }
    }

    /// The trainable tensors, in a stable (sorted) order.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut v: Vec<(String, Var)> =
            self.varmap.data().lock().expect("varmap lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn num_parameters(&self) -> usize {
        self.pairs.values().map(|(a, b)| a.elem_count() + b.elem_count()).sum()
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` as PEFT does.
    pub fn save_peft(&self, dir: &Path, base_model: &str) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let cfg = serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.config.rank,
            "lora_alpha": self.config.alpha,
            "lora_dropout": self.config.dropout,
            "target_modules": self.config.target_modules,
            "use_rslora": self.config.use_rslora,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "modules_to_save": null,
            "use_dora": false,
        });
        let p = dir.join("adapter_config.json");
        std::fs::write(&p, serde_json::to_string_pretty(&cfg).expect("json")).map_err(io_err(&p))?;
        let tensors: HashMap<String, Tensor> =
            self.named_vars().into_iter().map(|(k, v)| (k, v.as_tensor().clone())).collect();
        candle_core::safetensors::save(&tensors, dir.join("adapter_model.safetensors"))?;
        Ok(())
    }

    /// Loads a PEFT LoRA adapter for `model` (its module names must match the model's).
    pub fn load_peft(dir: &Path, model: &Model) -> Result<Self> {
        let p = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| MlError::Json { path: p.clone(), source })?;
        let get_f = |k: &str| v.get(k).and_then(|x| x.as_f64());
        let rank = get_f("r").ok_or_else(|| bad_model(&p, "no r"))? as usize;
        let targets: Vec<String> = match v.get("target_modules") {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => return Err(bad_model(&p, "no target_modules")),
        };
        let config = LoraConfig {
            rank,
            alpha: get_f("lora_alpha").unwrap_or(rank as f64),
            dropout: get_f("lora_dropout").unwrap_or(0.0),
            target_modules: targets,
            use_rslora: v.get("use_rslora").and_then(|x| x.as_bool()).unwrap_or(false),
        };
        let st = dir.join("adapter_model.safetensors");
        let mut tensors =
            candle_core::safetensors::load(&st, model.device()).map_err(|e| bad_model(&st, e.to_string()))?;
        let mut pairs = HashMap::new();
        for lin in model.linears() {
            let (ka, kb) = (peft_key(&lin.path, "A"), peft_key(&lin.path, "B"));
            match (tensors.remove(&ka), tensors.remove(&kb)) {
                (Some(a), Some(b)) => {
                    let (out, inp) = lin.weight.dims2()?;
                    if a.dims() != [rank, inp] || b.dims() != [out, rank] {
                        return Err(bad_model(
                            &st,
                            format!(
                                "{} has shapes {:?}/{:?}, expected [{rank}, {inp}]/[{out}, {rank}]",
                                lin.path,
                                a.dims(),
                                b.dims()
                            ),
                        ));
                    }
                    pairs.insert(
                        lin.path.clone(),
                        (Var::from_tensor(&a.to_dtype(DType::F32)?)?, Var::from_tensor(&b.to_dtype(DType::F32)?)?),
                    );
                }
                (None, None) => {}
                _ => return Err(bad_model(&st, format!("{} has only one of lora_A/lora_B", lin.path))),
            }
        }
        if let Some(k) = tensors.keys().next() {
            return Err(bad_model(&st, format!("tensor {k} matches no module of the model")));
        }
        let lora = Lora { config, varmap: VarMap::new(), pairs };
        lora.sync_varmap();
        Ok(lora)
    }

    /// Overwrites the adapter's tensors with those of a saved adapter (used on resume).
    pub fn set_from(&self, other: &Lora) -> Result<()> {
        for (path, (a, b)) in &self.pairs {
            let (oa, ob) = other.pairs.get(path).ok_or_else(|| MlError::Input(format!("checkpoint lacks {path}")))?;
            a.set(oa.as_tensor())?;
            b.set(ob.as_tensor())?;
        }
        Ok(())
    }
}

impl<'a> Adapter<'a> {
    /// The adapter as sampling and scoring use it: no dropout.
    pub fn inference(lora: &'a Lora) -> Self {
        Adapter::new(&lora.pairs, lora.config.scale(), 0.0, None)
    }

    /// The adapter as a training step uses it: dropout (the configured rate) drawn from
    /// `rng`.
    pub fn training(lora: &'a Lora, rng: &'a RefCell<ChaCha8Rng>) -> Self {
        Adapter::new(&lora.pairs, lora.config.scale(), lora.config.dropout, Some(rng))
    }
}

/// `model.merged(&lora)` takes the adapter as inference sees it.
impl<'a> From<&'a Lora> for Adapter<'a> {
    fn from(lora: &'a Lora) -> Self {
        Adapter::inference(lora)
    }
}
