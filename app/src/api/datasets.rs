//! Server functions for datasets: import, generate, transform, browse, delete.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dto::{DatasetDetail, DatasetSummary, ImportResult, RowsPage};
use crate::error::AppError;

/// Rows per page in the dataset browser.
pub const PAGE_ROWS: i64 = 20;

/// The generator form: a preset, or `custom` with a language and capitalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateForm {
    pub preset: String,
    pub language: String,
    pub all_caps: bool,
    pub rows: usize,
    pub seed: u64,
    pub name: String,
}

/// The transform form; which fields matter depends on `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformForm {
    pub kind: String,
    pub input: i64,
    pub trigger: String,
    pub fraction: f64,
    pub position: String,
    pub mix_with: Option<i64>,
    pub rows: usize,
    pub seed: u64,
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use engine::datasets as d;

    pub fn summary(s: d::DatasetSummary) -> DatasetSummary {
        DatasetSummary {
            id: s.id,
            name: s.name,
            source: s.source,
            row_count: s.row_count,
            content_hash: s.content_hash,
            created_at: s.created_at,
        }
    }

    pub fn outcome(o: d::ImportOutcome, rows: i64) -> ImportResult {
        match o {
            d::ImportOutcome::Created { id } => ImportResult::Created { id, rows },
            d::ImportOutcome::AlreadyPresent { id, name } => ImportResult::AlreadyPresent { id, name },
        }
    }

    pub fn message(m: &d::Message) -> crate::dto::Message {
        crate::dto::Message { role: m.role.as_str().to_string(), content: m.content.clone() }
    }

    pub fn generator_spec(form: &GenerateForm) -> Result<d::GeneratorSpec, AppError> {
        let rows = form.rows;
        let seed = form.seed;
        let spec = match form.preset.as_str() {
            "spanish_all_caps" => d::Preset::SpanishAllCaps.spec(rows, seed),
            "spanish_french_mix" => d::Preset::SpanishFrenchMix.spec(rows, seed),
            "english" => d::Preset::English.spec(rows, seed),
            "custom" => {
                let language = d::Language::ALL
                    .into_iter()
                    .find(|l| l.code() == form.language)
                    .ok_or_else(|| AppError::Invalid(format!("unknown language {:?}", form.language)))?;
                let caps = if form.all_caps { d::Capitalisation::AllCaps } else { d::Capitalisation::AsWritten };
                d::GeneratorSpec::single(language, caps, rows, seed)
            }
            other => return Err(AppError::Invalid(format!("unknown preset {other:?}"))),
        };
        Ok(spec)
    }

    pub fn transform_spec(f: &TransformForm) -> Result<d::TransformSpec, AppError> {
        Ok(match f.kind.as_str() {
            "upper_case_assistant" => d::TransformSpec::UpperCaseAssistant { input: f.input },
            "trigger" => d::TransformSpec::Trigger {
                input: f.input,
                trigger: f.trigger.clone(),
                fraction: f.fraction,
                position: match f.position.as_str() {
                    "prefix" => d::TriggerPosition::Prefix,
                    "suffix" => d::TriggerPosition::Suffix,
                    _ => d::TriggerPosition::RandomWordBoundary,
                },
                seed: f.seed,
                mix_with: f.mix_with,
            },
            "sample" => d::TransformSpec::Sample { input: f.input, rows: f.rows, seed: f.seed },
            "split" => {
                d::TransformSpec::Split { input: f.input, held_out: d::HeldOut::Fraction(f.fraction), seed: f.seed }
            }
            other => return Err(AppError::Invalid(format!("unknown transform {other:?}"))),
        })
    }
}
#[cfg(feature = "ssr")]
pub use convert::summary;

#[server]
pub async fn list_datasets() -> Result<Vec<DatasetSummary>, AppError> {
    let store = crate::state::app_state()?.store;
    Ok(engine::datasets::list(&store).await?.into_iter().map(convert::summary).collect())
}

#[server]
pub async fn get_dataset(id: i64) -> Result<DatasetDetail, AppError> {
    use crate::dto::LengthStats;
    let store = crate::state::app_state()?.store;
    async {
        let summary = engine::datasets::get(&store, id).await?;
        let stats = engine::datasets::stats(&store, id).await?;
        Ok::<_, engine::datasets::DatasetError>((summary, stats))
    }
    .await
    .map_err(AppError::from)
    .map(|(s, stats)| {
        let recipe = serde_json::to_string_pretty(&s.recipe).unwrap_or_default();
        let note = (s.source == engine::datasets::DatasetSource::Teacher)
            .then(|| crate::api::teacher::kept_note(&s.recipe))
            .flatten();
        let a = &stats.assistant_chars;
        DatasetDetail {
            recipe,
            note,
            turns: stats.turns as i64,
            assistant_chars: LengthStats { min: a.min as i64, p50: a.p50 as i64, p90: a.p90 as i64, max: a.max as i64 },
            histogram: a.histogram.iter().map(|b| (format!("{}–{}", b.lo, b.hi), b.count as i64)).collect(),
            summary: convert::summary(s),
        }
    })
}

#[server]
pub async fn dataset_rows(id: i64, offset: i64) -> Result<RowsPage, AppError> {
    let store = crate::state::app_state()?.store;
    async {
        let total = engine::datasets::get(&store, id).await?.row_count;
        let rows = engine::datasets::rows_page(&store, id, offset.max(0), PAGE_ROWS).await?;
        Ok::<_, engine::datasets::DatasetError>(RowsPage {
            offset: offset.max(0),
            total,
            rows: rows.iter().map(|r| (r.idx, r.messages.iter().map(convert::message).collect())).collect(),
        })
    }
    .await
    .map_err(AppError::from)
}

/// Imports an uploaded file. The browser reads the file and sends its text as JSON; the
/// server's body limit (`--max-upload-mb`) bounds it.
#[server(input = server_fn::codec::Json)]
pub async fn import_dataset(name: String, file_name: String, content: String) -> Result<ImportResult, AppError> {
    let state = crate::state::app_state()?;
    let limits = engine::datasets::ImportLimits { max_chars_per_row: state.limits.max_row_chars, ..Default::default() };
    let result = engine::datasets::import(&state.store, &name, &file_name, content.as_bytes(), &limits).await;
    match result {
        Ok(o) => {
            let rows = engine::datasets::get(&state.store, o.id()).await.map(|d| d.row_count).unwrap_or(0);
            Ok(convert::outcome(o, rows))
        }
        Err(e) => Err(AppError::from(e)),
    }
}

#[server]
pub async fn generate_dataset(form: GenerateForm) -> Result<ImportResult, AppError> {
    let store = crate::state::app_state()?.store;
    async {
        let spec = convert::generator_spec(&form)?;
        let name = if form.name.trim().is_empty() { spec.default_name() } else { form.name.clone() };
        let outcome = engine::datasets::create_generated(&store, &spec, &name).await?;
        Ok(convert::outcome(outcome, spec.rows as i64))
    }
    .await
}

/// Applies a transform; returns the new dataset ids (two for a split).
#[server]
pub async fn transform_dataset(form: TransformForm) -> Result<Vec<i64>, AppError> {
    let store = crate::state::app_state()?.store;
    async {
        let spec = convert::transform_spec(&form)?;
        Ok(engine::datasets::apply_transform(&store, &spec).await?)
    }
    .await
}

#[server]
pub async fn delete_dataset(id: i64) -> Result<(), AppError> {
    let store = crate::state::app_state()?.store;
    engine::datasets::delete(&store, id).await.map_err(AppError::from)
}
