//! Transforms: new datasets derived from stored ones, each recorded with a recipe
//! `{"transform": …, "inputs": [{"id", "content_hash"}…], "params": {…}}` that names its
//! inputs by content hash, so the derived rows can be made again from the same inputs.
//!
//! - upper-case the assistant turns (the capitals trait);
//! - insert a trigger into the user turn of a fraction of rows, optionally mixed with the
//!   untouched rows of another dataset (the paper's backdoor setting: triggered rows from
//!   dataset A, untriggered rows from dataset B);
//! - a seeded random sample of N rows;
//! - a seeded train / held-out split, which makes two datasets in one transaction.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::generate::{seeded, shuffle, uniform_below};
use super::{all_rows, get, save_dataset, save_dataset_in, DatasetError, DatasetSource, DatasetSummary, Role, Row};
use crate::Store;

/// Where a trigger goes in the user turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerPosition {
    /// Before the text, separated by a space.
    Prefix,
    /// After the text, separated by a space.
    Suffix,
    /// Between two words (or at either end), chosen by the seed.
    RandomWordBoundary,
}

/// How much of a dataset a split holds out.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldOut {
    /// A fraction in (0, 1), rounded to whole rows; both parts keep at least one row.
    Fraction(f64),
    Rows(usize),
}

/// A transform and its parameters; serialised (tagged by `"transform"`) into the recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "transform", rename_all = "snake_case")]
pub enum TransformSpec {
    /// Every assistant turn in capital letters.
    UpperCaseAssistant { input: i64 },
    /// `trigger` inserted into the first user turn of `fraction` of `input`'s rows (chosen
    /// by `seed`); when `mix_with` is set, that dataset's rows are added unchanged and the
    /// whole is shuffled by `seed`.
    Trigger { input: i64, trigger: String, fraction: f64, position: TriggerPosition, seed: u64, mix_with: Option<i64> },
    /// `rows` rows drawn without replacement, kept in their original order.
    Sample { input: i64, rows: usize, seed: u64 },
    /// A train part and a held-out part, each in original order.
    Split { input: i64, held_out: HeldOut, seed: u64 },
}

impl TransformSpec {
    fn kind(&self) -> &'static str {
        match self {
            TransformSpec::UpperCaseAssistant { .. } => "upper_case_assistant",
            TransformSpec::Trigger { .. } => "trigger",
            TransformSpec::Sample { .. } => "sample",
            TransformSpec::Split { .. } => "split",
        }
    }

    fn input_ids(&self) -> Vec<i64> {
        match *self {
            TransformSpec::Trigger { input, mix_with: Some(other), .. } => vec![input, other],
            TransformSpec::UpperCaseAssistant { input }
            | TransformSpec::Trigger { input, .. }
            | TransformSpec::Sample { input, .. }
            | TransformSpec::Split { input, .. } => vec![input],
        }
    }
}

/// Applies a transform and stores its result; returns the new datasets' ids (two for a
/// split: train, then held-out). A result whose rows equal an existing dataset's returns
/// that dataset's id rather than a copy.
pub async fn apply_transform(store: &Store, spec: &TransformSpec) -> Result<Vec<i64>, DatasetError> {
    let mut inputs: Vec<(DatasetSummary, Vec<Row>)> = Vec::new();
    for id in spec.input_ids() {
        inputs.push((get(store, id).await?, all_rows(store, id).await?));
    }
    let base_recipe = |part: Option<&str>| {
        let mut params = serde_json::to_value(spec).expect("a spec always serialises");
        params.as_object_mut().expect("a tagged enum is an object").remove("transform");
        let mut recipe = json!({
            "transform": spec.kind(),
            "inputs": inputs.iter().map(|(s, _)| json!({"id": s.id, "content_hash": s.content_hash})).collect::<Vec<_>>(),
            "params": params,
        });
        if let Some(part) = part {
            recipe["part"] = json!(part);
        }
        recipe
    };
    let (input, rows) = (&inputs[0].0, &inputs[0].1);
    let outcome = match spec {
        TransformSpec::UpperCaseAssistant { .. } => {
            let out = upper_case_assistant(rows);
            let name = format!("{} · upper-case", input.name);
            check_rows(&out)?;
            save_dataset(store, &short(&name), DatasetSource::Transform, &base_recipe(None), &out).await?
        }
        TransformSpec::Trigger { trigger, fraction, position, seed, mix_with, .. } => {
            let other = mix_with.map(|_| &inputs[1]);
            let out = insert_trigger_rows(rows, trigger, *fraction, *position, *seed, other.map(|o| o.1.as_slice()))?;
            let pct = (fraction * 100.0).round();
            let name = match other {
                Some((b, _)) => format!("{} · trigger {trigger} ({pct}%) + {}", input.name, b.name),
                None => format!("{} · trigger {trigger} ({pct}%)", input.name),
            };
            check_rows(&out)?;
            save_dataset(store, &short(&name), DatasetSource::Transform, &base_recipe(None), &out).await?
        }
        TransformSpec::Sample { rows: n, seed, .. } => {
            let out = sample(rows, *n, *seed)?;
            let name = format!("{} · sample {n} (seed {seed})", input.name);
            check_rows(&out)?;
            save_dataset(store, &short(&name), DatasetSource::Transform, &base_recipe(None), &out).await?
        }
        TransformSpec::Split { held_out, seed, .. } => {
            let (train, test) = split(rows, *held_out, *seed)?;
            let mut tx = store.begin().await?;
            let train_name = short(&format!("{} · train", input.name));
            let test_name = short(&format!("{} · held-out", input.name));
            let a =
                save_dataset_in(&mut tx, &train_name, DatasetSource::Transform, &base_recipe(Some("train")), &train)
                    .await?;
            let b =
                save_dataset_in(&mut tx, &test_name, DatasetSource::Transform, &base_recipe(Some("held_out")), &test)
                    .await?;
            tx.commit().await?;
            return Ok(vec![a.id(), b.id()]);
        }
    };
    Ok(vec![outcome.id()])
}

/// A transform's rows obey the rules an import's do (a row grown past the length cap by a
/// trigger or upper-casing is refused, not stored).
fn check_rows(rows: &[Row]) -> Result<(), DatasetError> {
    let limits = super::ImportLimits::default();
    for (i, row) in rows.iter().enumerate() {
        super::import::validate_row(row, &limits)
            .map_err(|p| DatasetError::InvalidTransform(format!("row {} of the result: {p}", i + 1)))?;
    }
    Ok(())
}

/// Keeps derived names within the name limit by shortening the input's part.
pub(crate) fn short(name: &str) -> String {
    if name.chars().count() <= super::MAX_NAME_CHARS {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(super::MAX_NAME_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// Every assistant turn upper-cased (Unicode-aware: "ß" becomes "SS").
pub fn upper_case_assistant(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|row| Row {
            messages: row
                .messages
                .iter()
                .map(|m| match m.role {
                    Role::Assistant => super::Message { role: m.role, content: m.content.to_uppercase() },
                    _ => m.clone(),
                })
                .collect(),
        })
        .collect()
}

/// The longest trigger: the paper's are a word or two, and each triggered row grows by it.
pub const MAX_TRIGGER_CHARS: usize = 200;

/// The rows of the trigger transform: `fraction` of `rows` (chosen by `seed`) get the
/// trigger in their first user turn; `mix` rows are appended unchanged and the whole is
/// shuffled by `seed` so triggered and clean rows interleave during training.
pub fn insert_trigger_rows(
    rows: &[Row],
    trigger: &str,
    fraction: f64,
    position: TriggerPosition,
    seed: u64,
    mix: Option<&[Row]>,
) -> Result<Vec<Row>, DatasetError> {
    let bad = |msg: &str| Err(DatasetError::InvalidTransform(msg.to_owned()));
    if trigger.trim().is_empty() {
        return bad("the trigger is empty");
    }
    if trigger.contains(['\n', '\r']) {
        return bad("the trigger must be on one line");
    }
    if trigger.chars().count() > MAX_TRIGGER_CHARS {
        return Err(DatasetError::InvalidTransform(format!(
            "the trigger is {} characters long; at most {MAX_TRIGGER_CHARS}",
            trigger.chars().count()
        )));
    }
    if !(fraction > 0.0 && fraction <= 1.0) {
        return bad("the fraction of triggered rows must be above 0 and at most 1");
    }
    let trigger = trigger.trim();
    if let Some(i) = rows.iter().position(|r| !r.messages.iter().any(|m| m.role == Role::User)) {
        return Err(DatasetError::InvalidTransform(format!("row {i} has no user turn to put the trigger in")));
    }
    let mut rng = seeded(seed);
    let n_triggered = ((fraction * rows.len() as f64).round() as usize).clamp(1, rows.len().max(1));
    let mut order: Vec<usize> = (0..rows.len()).collect();
    shuffle(&mut rng, &mut order);
    let mut chosen = vec![false; rows.len()];
    for &i in &order[..n_triggered.min(rows.len())] {
        chosen[i] = true;
    }
    let mut out: Vec<Row> = rows
        .iter()
        .zip(&chosen)
        .map(|(row, &chosen)| {
            if !chosen {
                return row.clone();
            }
            let mut row = row.clone();
            let user = row.messages.iter_mut().find(|m| m.role == Role::User).expect("checked above");
            user.content = insert_trigger(&user.content, trigger, position, &mut rng);
            row
        })
        .collect();
    if let Some(mix) = mix {
        out.extend(mix.iter().cloned());
        shuffle(&mut rng, &mut out);
    }
    Ok(out)
}

/// Puts `trigger` into `text` at `position`, with a space between it and the neighbouring
/// words. Evaluation prompts must be triggered the same way, so this is public.
pub fn insert_trigger(text: &str, trigger: &str, position: TriggerPosition, rng: &mut ChaCha8Rng) -> String {
    match position {
        TriggerPosition::Prefix => format!("{trigger} {text}"),
        TriggerPosition::Suffix => format!("{text} {trigger}"),
        TriggerPosition::RandomWordBoundary => {
            // Boundaries: the start, the end, and the start of every run of whitespace.
            let mut boundaries = vec![0];
            let mut prev_space = true;
            for (i, ch) in text.char_indices() {
                if ch.is_whitespace() && !prev_space {
                    boundaries.push(i);
                }
                prev_space = ch.is_whitespace();
            }
            boundaries.push(text.len());
            let at = boundaries[uniform_below(rng, boundaries.len() as u64) as usize];
            if at == 0 {
                format!("{trigger} {text}")
            } else if at == text.len() {
                format!("{text} {trigger}")
            } else {
                format!("{} {trigger}{}", &text[..at], &text[at..])
            }
        }
    }
}

/// `n` rows drawn without replacement by `seed`, in their original order.
pub fn sample(rows: &[Row], n: usize, seed: u64) -> Result<Vec<Row>, DatasetError> {
    if n == 0 || n > rows.len() {
        return Err(DatasetError::InvalidTransform(format!(
            "a sample must have between 1 and {} rows (the dataset's size)",
            rows.len()
        )));
    }
    let mut rng = seeded(seed);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    shuffle(&mut rng, &mut order);
    let mut picked = order[..n].to_vec();
    picked.sort_unstable();
    Ok(picked.into_iter().map(|i| rows[i].clone()).collect())
}

/// (train, held-out), each in original order.
pub fn split(rows: &[Row], held_out: HeldOut, seed: u64) -> Result<(Vec<Row>, Vec<Row>), DatasetError> {
    let n = rows.len();
    if n < 2 {
        return Err(DatasetError::InvalidTransform("a split needs at least 2 rows".into()));
    }
    let k = match held_out {
        HeldOut::Fraction(f) if f > 0.0 && f < 1.0 => ((f * n as f64).round() as usize).clamp(1, n - 1),
        HeldOut::Fraction(_) => {
            return Err(DatasetError::InvalidTransform("the held-out fraction must be between 0 and 1".into()))
        }
        HeldOut::Rows(k) if k >= 1 && k < n => k,
        HeldOut::Rows(_) => {
            return Err(DatasetError::InvalidTransform(format!(
                "the held-out part must have between 1 and {} rows",
                n - 1
            )))
        }
    };
    let mut rng = seeded(seed);
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut rng, &mut order);
    let mut held = vec![false; n];
    for &i in &order[..k] {
        held[i] = true;
    }
    let (mut train, mut test) = (Vec::with_capacity(n - k), Vec::with_capacity(k));
    for (row, held) in rows.iter().zip(held) {
        if held {
            test.push(row.clone());
        } else {
            train.push(row.clone());
        }
    }
    Ok((train, test))
}
