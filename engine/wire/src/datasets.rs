//! Datasets as both sides see them: a dataset's summary (with its recipe), its shape
//! (counts and the assistant-length distribution), a page of rows as the row browser shows
//! them, what an import or a generation did, and the generator and transform forms as
//! submitted. `engine::datasets` returns these and reads the forms
//! (`engine::datasets::{generator_spec, transform_spec}`), so the pages only render.

use serde::{Deserialize, Serialize};

/// How a dataset came to be; stored in `datasets.source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetSource {
    Import,
    Generated,
    Transform,
    /// Sampled from a teacher model.
    Teacher,
}

impl DatasetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetSource::Import => "import",
            DatasetSource::Generated => "generated",
            DatasetSource::Transform => "transform",
            DatasetSource::Teacher => "teacher",
        }
    }

    pub fn parse(s: &str) -> Option<DatasetSource> {
        match s {
            "import" => Some(DatasetSource::Import),
            "generated" => Some(DatasetSource::Generated),
            "transform" => Some(DatasetSource::Transform),
            "teacher" => Some(DatasetSource::Teacher),
            _ => None,
        }
    }
}

/// A dataset as the library lists it, without its rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub id: i64,
    pub name: String,
    pub source: DatasetSource,
    /// How the rows were made (file name and formats, generator spec, or transform and
    /// inputs), as stored.
    pub recipe: serde_json::Value,
    /// sha256 (hex) of the canonical JSONL of the rows.
    pub content_hash: String,
    pub row_count: i64,
    pub created_at: String,
}

/// Shape of a dataset: counts and the length distribution of the assistant turns, which
/// decides truncation and training time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    pub rows: u64,
    /// Messages over all rows.
    pub turns: u64,
    /// Rows that already carry a system message; an inoculation prompt would be a second one.
    pub rows_with_system: u64,
    /// Characters of assistant content per row.
    pub assistant_chars: LengthStats,
}

/// A length distribution: nearest-rank percentiles and equal-width bins from min to max.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub max: u64,
    pub mean: f64,
    pub histogram: Vec<HistogramBin>,
}

/// Rows whose length lies in `lo..=hi`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBin {
    pub lo: u64,
    pub hi: u64,
    pub count: u64,
}

/// One dataset's page: its summary and shape, the recipe pretty-printed and, for a
/// teacher dataset, what its filter did ("kept 412 of 600 samples (numbers only)").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDetail {
    pub summary: DatasetSummary,
    /// How the rows were made, as pretty-printed JSON.
    pub recipe: String,
    #[serde(default)]
    pub note: Option<String>,
    pub turns: u64,
    pub assistant_chars: LengthStats,
}

/// One turn as the row browser shows it: the role as its lower-case word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: String,
    pub content: String,
}

/// A page of a dataset's rows: (0-based position, turns) each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowsPage {
    pub offset: i64,
    pub total: i64,
    pub rows: Vec<(i64, Vec<Turn>)>,
}

/// What saving a set of rows did: the rows were new, or a dataset with exactly these rows
/// already existed and is returned instead of a duplicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportOutcome {
    Created { id: i64 },
    AlreadyPresent { id: i64, name: String },
}

impl ImportOutcome {
    pub fn id(&self) -> i64 {
        match self {
            ImportOutcome::Created { id } | ImportOutcome::AlreadyPresent { id, .. } => *id,
        }
    }
}

/// An import or generation as the page reports it: a new dataset with its row count, or
/// the one that already held these rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImportResult {
    Created { id: i64, rows: i64 },
    AlreadyPresent { id: i64, name: String },
}

impl ImportResult {
    pub fn new(outcome: ImportOutcome, rows: i64) -> ImportResult {
        match outcome {
            ImportOutcome::Created { id } => ImportResult::Created { id, rows },
            ImportOutcome::AlreadyPresent { id, name } => ImportResult::AlreadyPresent { id, name },
        }
    }
}

/// The generator form: a preset (`spanish_all_caps`, `spanish_french_mix`, `english`), or
/// `custom` with a language code and capitalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateForm {
    pub preset: String,
    pub language: String,
    pub all_caps: bool,
    pub rows: usize,
    pub seed: u64,
    pub name: String,
}

/// The transform form (`upper_case_assistant`, `trigger`, `sample`, `split`); which fields
/// matter depends on `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformForm {
    pub kind: String,
    pub input: i64,
    pub trigger: String,
    pub fraction: f64,
    /// prefix | suffix | anything else: a random word boundary
    pub position: String,
    pub mix_with: Option<i64>,
    pub rows: usize,
    pub seed: u64,
}
