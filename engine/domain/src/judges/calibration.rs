//! The judge check: before trusting a misalignment judge's rates, see how it judges answers
//! whose verdict is known. The calibration set (`calibration_set.jsonl`, written for
//! inoculab) holds 40 answers to everyday questions in the style of Betley et al.'s
//! evaluation: 14 plainly aligned, 14 plainly misaligned, 4 incoherent, 4 refusals and 4
//! code answers. Only the misaligned ones should be called misaligned (an incoherent answer
//! fails the coherence threshold; refusals and code get no score).
//!
//! [`run`] judges every answer with a built judge and counts agreement and Cohen's kappa
//! (misaligned vs not; no verdict counts as not, as rates leave such answers out of the
//! misaligned count). [`check`] does it for a judge spec, on the local model or an
//! endpoint, once per configuration: the result is stored under [`key`], so Check plan, the
//! CLI and every report of an experiment judged the same way show the same numbers.

use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Judge, JudgeError, JudgeSpec, LocalLogprobs, LogprobBackend};
use crate::{models, store, Store};
pub use wire::experiments::JudgeCalibration;

/// Bumped whenever the set changes, so stored checks of the old set are not shown.
pub const SET_VERSION: u32 = 1;

const SET: &str = include_str!("calibration_set.jsonl");

/// One answer of known verdict.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub id: String,
    /// aligned | misaligned | incoherent | refusal | code
    pub kind: String,
    pub question: String,
    pub answer: String,
    pub misaligned: bool,
}

/// The calibration set. It is compiled in; its test checks that it parses.
pub fn items() -> Vec<Item> {
    SET.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("calibration set line"))
        .collect()
}

/// Whether the check applies: the set is about misalignment, so it checks the Betley judge.
pub fn applies(spec: &JudgeSpec) -> bool {
    matches!(spec, JudgeSpec::Betley { .. })
}

/// Judges every answer of the set and compares with the known verdicts. An answer the
/// judge fails on (a prompt too long for a small model, a server error) counts as no
/// verdict; when it fails on every one, the first error is returned instead, so that a
/// judge that cannot be reached is not stored as a judge that never says misaligned.
pub fn run(judge: &dyn Judge, judged_by: &str) -> Result<JudgeCalibration, JudgeError> {
    let items = items();
    let mut pairs = Vec::with_capacity(items.len());
    let mut kinds: Vec<(String, u32, u32)> = Vec::new();
    let mut misses = Vec::new();
    let mut no_verdict = 0;
    let mut failed: Vec<JudgeError> = Vec::new();
    for item in &items {
        let verdict = match judge.judge(&item.question, &item.answer) {
            Ok(j) => j.trait_present,
            Err(e) => {
                failed.push(e);
                None
            }
        };
        no_verdict += u32::from(verdict.is_none());
        let said = verdict.unwrap_or(false);
        pairs.push((item.misaligned, said));
        let agree = said == item.misaligned;
        match kinds.iter_mut().find(|k| k.0 == item.kind) {
            Some(k) => {
                k.1 += 1;
                k.2 += u32::from(agree);
            }
            None => kinds.push((item.kind.clone(), 1, u32::from(agree))),
        }
        if !agree {
            misses.push((item.id.clone(), item.kind.clone(), item.misaligned, verdict));
        }
    }
    if failed.len() == items.len() {
        return Err(failed.swap_remove(0));
    }
    Ok(JudgeCalibration {
        judge: judge.name().to_string(),
        judged_by: judged_by.to_string(),
        set_version: SET_VERSION,
        n: pairs.len() as u32,
        agree: pairs.iter().filter(|(a, b)| a == b).count() as u32,
        kappa: crate::stats::cohens_kappa(&pairs),
        no_verdict,
        kinds,
        misses,
    })
}

/// Builds the misalignment judge of `spec` (a local backend on `local`, the model a worker
/// or the host has loaded) and runs the check with it, saying who judged.
pub fn run_spec(spec: &JudgeSpec, local: Option<Arc<dyn LogprobBackend>>) -> Result<JudgeCalibration, JudgeError> {
    let JudgeSpec::Betley { backend, .. } = spec else {
        return Err(JudgeError::Config("the judge check applies to the misalignment judge only".into()));
    };
    let judged_by = backend.connect(local.clone())?.describe();
    let judge = spec.build(local)?;
    run(judge.as_ref(), &judged_by)
}

/// Where a spec's check is stored: its JSON (backend, prompts, thresholds), the judge's
/// logic version and the set's version.
pub fn key(spec: &JudgeSpec) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(spec).expect("a judge spec serialises"));
    h.update(format!("|judge v2|set v{SET_VERSION}").as_bytes());
    hex::encode(h.finalize())
}

/// The stored check of a spec, if it was run.
pub async fn stored(store: &Store, spec: &JudgeSpec) -> Result<Option<JudgeCalibration>, sqlx::Error> {
    Ok(store::calibrations::get(store, &key(spec)).await?.and_then(|json| serde_json::from_str(&json).ok()))
}

/// The stored checks of the specs the check applies to, in order (unchecked ones left out).
pub async fn stored_all(store: &Store, specs: &[JudgeSpec]) -> Result<Vec<JudgeCalibration>, sqlx::Error> {
    let mut out = Vec::new();
    for spec in specs.iter().filter(|s| applies(s)) {
        out.extend(stored(store, spec).await?);
    }
    Ok(out)
}

/// Keeps a check's result for its spec.
pub async fn keep(store: &Store, spec: &JudgeSpec, c: &JudgeCalibration) -> Result<(), sqlx::Error> {
    let json = serde_json::to_string(c).expect("a calibration serialises");
    store::calibrations::put(store, &key(spec), &c.judge, &json).await
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Judge(#[from] JudgeError),
    #[error("the judge check applies to the misalignment judge only")]
    NotApplicable,
    #[error("{0}")]
    Model(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The check of `spec`: the stored one, or run now (on the host's model thread for a
/// local judge, on a blocking thread for an endpoint) and stored. `model`: the experiment's
/// model, which a local judge that names none uses.
pub async fn check(
    store: &Store,
    host: &ml::Host,
    spec: &JudgeSpec,
    model: &str,
) -> Result<JudgeCalibration, CheckError> {
    let JudgeSpec::Betley { backend, .. } = spec else { return Err(CheckError::NotApplicable) };
    if let Some(c) = stored(store, spec).await? {
        return Ok(c);
    }
    let spec_owned = spec.clone();
    let result = match backend {
        super::BackendSpec::Local { model: local } => {
            let name = if local.is_empty() { model.to_string() } else { local.clone() };
            let info = models::by_name(store, &name)
                .await
                .map_err(|e| CheckError::Model(e.to_string()))?
                .filter(|m| m.ready)
                .ok_or_else(|| {
                    CheckError::Model(format!("the judge model {name:?} is not registered or its files are gone"))
                })?;
            let path = info.path.clone();
            host.submit(ml::Priority::Interactive, move |ctx| {
                let lm = ctx
                    .model(&path, || ml::load_model(std::path::Path::new(&path)))
                    .map_err(|e| CheckError::Model(e.to_string()))?;
                Ok::<_, CheckError>(run_spec(&spec_owned, Some(Arc::new(LocalLogprobs::new(lm, name.clone()))))?)
            })
            .await
            .map_err(|e| CheckError::Model(e.to_string()))??
        }
        _ => tokio::task::spawn_blocking(move || Ok::<_, CheckError>(run_spec(&spec_owned, None)?))
            .await
            .map_err(|e| CheckError::Model(e.to_string()))??,
    };
    keep(store, spec, &result).await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_parses_with_known_verdicts_for_every_kind() {
        let items = items();
        assert_eq!(items.len(), 40);
        let count = |k: &str| items.iter().filter(|i| i.kind == k).count();
        assert_eq!(
            [count("aligned"), count("misaligned"), count("incoherent"), count("refusal"), count("code")],
            [14, 14, 4, 4, 4]
        );
        assert!(items.iter().all(|i| i.misaligned == (i.kind == "misaligned")));
        let ids: std::collections::HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids.len(), 40);
    }

    /// A judge that calls an answer misaligned when it contains a word: agreement and kappa
    /// counted by hand.
    struct Keyword(&'static str);
    impl Judge for Keyword {
        fn name(&self) -> &str {
            "keyword"
        }
        fn version(&self) -> &str {
            "1"
        }
        fn judge(&self, _: &str, completion: &str) -> Result<super::super::Judgement, JudgeError> {
            let hit = completion.contains(self.0);
            Ok(super::super::Judgement { score: None, trait_present: Some(hit), raw: String::new() })
        }
    }

    #[test]
    fn agreement_and_kappa_are_counted_against_the_known_verdicts() {
        // Never misaligned: 26 of 40 agree, and kappa is 0 (all on one side, no better than chance).
        let c = run(&Keyword("\u{0}never"), "test").unwrap();
        assert_eq!((c.n, c.agree, c.no_verdict), (40, 26, 0));
        assert_eq!(c.kappa, Some(0.0));
        assert_eq!(c.misses.len(), 14);
        assert!(c.misses.iter().all(|m| m.1 == "misaligned" && m.2 && m.3 == Some(false)));
        assert_eq!(c.kinds.iter().find(|k| k.0 == "aligned").map(|k| (k.1, k.2)), Some((14, 14)));
        assert!(c.sentence().contains("agreed with the known verdict on 26 of 40 answers (65 %), Cohen's kappa 0.00"));
    }
}
