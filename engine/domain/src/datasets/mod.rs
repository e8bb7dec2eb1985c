//! Datasets: chat rows for fine-tuning, stored immutably in the `datasets` and
//! `dataset_rows` tables. This module owns the row types, the content hash that makes two
//! datasets with the same rows the same dataset, and what is done with those two tables:
//! inserting (one transaction per dataset, batched), listing, paging, statistics, renaming
//! and deleting; the queries themselves are `store::datasets`. Parsing user files lives in
//! [`import`], the built-in generators in [`generate`], derived datasets in [`transform`]
//! and the built-in evaluation prompts in [`chat_prompts`], datasets sampled from a teacher
//! model in [`teacher`].

pub mod chat_prompts;
pub mod generate;
pub mod import;
pub mod teacher;
pub mod transform;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{
    self,
    datasets::{DatasetRecord, EncodedRow},
};
use crate::Store;

pub use chat_prompts::builtin_chat_prompts;
pub use generate::{
    create_generated, generate, Capitalisation, GeneratorSpec, Language, LanguageShare, Persona, Preset,
};
pub use import::{import, parse_jsonl, ImportErrors, ImportLimits, LineError, LineProblem, Parsed, RowFormat};
pub use transform::{apply_transform, HeldOut, TransformSpec, TriggerPosition};

/// Who speaks a turn: the ML core's type (chat templates render it), used as is.
pub use ml::Role;

/// One turn: `{"role": "user", "content": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message { role, content: content.into() }
    }
}

/// One training example: a conversation that contains at least one assistant turn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub messages: Vec<Message>,
}

impl Row {
    /// The usual single exchange: a user turn answered by an assistant turn.
    pub fn user_assistant(user: impl Into<String>, assistant: impl Into<String>) -> Row {
        Row { messages: vec![Message::new(Role::User, user), Message::new(Role::Assistant, assistant)] }
    }

    /// Characters (Unicode scalar values, as SQLite's `length()` counts them) over all turns.
    pub fn n_chars(&self) -> usize {
        self.messages.iter().map(|m| m.content.chars().count()).sum()
    }

    /// Characters in the assistant turns only: what a fine-tune is trained to produce.
    pub fn assistant_chars(&self) -> usize {
        self.messages.iter().filter(|m| m.role == Role::Assistant).map(|m| m.content.chars().count()).sum()
    }
}

/// How a dataset came to be, a dataset's summary and its shape: the wire crate's types,
/// shared with the pages.
pub use wire::datasets::{
    DatasetDetail, DatasetSource, DatasetStats, DatasetSummary, GenerateForm, HistogramBin, ImportResult, LengthStats,
    RowsPage, TransformForm, Turn,
};

/// One stored row with its position, as a page of the browser shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    /// 0-based position in the dataset.
    pub idx: i64,
    pub messages: Vec<Message>,
    pub n_turns: i64,
    /// Characters over all turns.
    pub n_chars: i64,
}

/// Bins in [`LengthStats::histogram`].
pub const HISTOGRAM_BINS: u64 = 10;

/// The most rows one page returns, so a careless client cannot ask for the whole table.
pub const MAX_PAGE: i64 = 1000;

/// What saving a set of rows did: the wire crate's type, which the store returns.
pub use wire::datasets::ImportOutcome;

/// Errors of the datasets module; each message is fit to show to the user.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset {0} does not exist")]
    NotFound(i64),
    #[error("{0}")]
    Import(#[from] ImportErrors),
    #[error("the file contains no rows")]
    Empty,
    #[error("invalid dataset name: {0}")]
    InvalidName(String),
    #[error("invalid generator settings: {0}")]
    InvalidSpec(String),
    #[error("invalid transform: {0}")]
    InvalidTransform(String),
    #[error("{} this dataset; it is kept so they stay reproducible", wire::counted(.0.unsigned_abs(), "experiment uses", "experiments use"))]
    InUse(i64),
    /// A form the page sent names a choice that does not exist.
    #[error("{0}")]
    Form(String),
    #[error("stored dataset is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// The longest dataset name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Trims a user-given name and rejects empty or overlong ones.
pub fn validate_name(name: &str) -> Result<String, DatasetError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DatasetError::InvalidName("the name is empty".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(DatasetError::InvalidName(format!("the name is longer than {MAX_NAME_CHARS} characters")));
    }
    Ok(name.to_owned())
}

/// The canonical JSONL of rows: one `{"messages":[…]}` per line, keys in the order
/// role, content, compact, each line ending in `\n`. Two datasets are the same exactly
/// when their canonical JSONL is byte-identical.
pub fn canonical_jsonl(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&canonical_line(row));
        out.push('\n');
    }
    out
}

/// sha256 (lower-case hex) of [`canonical_jsonl`].
pub fn content_hash(rows: &[Row]) -> String {
    let mut hasher = Sha256::new();
    for row in rows {
        hasher.update(canonical_line(row).as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

fn canonical_line(row: &Row) -> String {
    serde_json::to_string(row).expect("rows of strings always serialise")
}

/// Saves rows as a new dataset in one transaction, or finds the dataset that already has
/// exactly these rows. Callers have validated the name and the rows.
pub(crate) async fn save_dataset(
    store: &Store,
    name: &str,
    source: DatasetSource,
    recipe: &serde_json::Value,
    rows: &[Row],
) -> Result<ImportOutcome, DatasetError> {
    let mut tx = store.begin().await?;
    let outcome = save_dataset_in(&mut tx, name, source, recipe, rows).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// [`save_dataset`] inside a caller's transaction, so that a transform making several
/// datasets makes all of them or none.
pub(crate) async fn save_dataset_in(
    conn: &mut crate::store::Connection,
    name: &str,
    source: DatasetSource,
    recipe: &serde_json::Value,
    rows: &[Row],
) -> Result<ImportOutcome, DatasetError> {
    if rows.is_empty() {
        return Err(DatasetError::Empty);
    }
    let hash = content_hash(rows);
    let encode = |row: &Row| EncodedRow {
        messages: serde_json::to_string(&row.messages).expect("messages always serialise"),
        n_turns: row.messages.len() as i64,
        n_chars: row.n_chars() as i64,
    };
    Ok(store::datasets::insert_in(conn, name, source, &recipe.to_string(), &hash, rows, encode).await?)
}

impl DatasetRecord {
    fn into_summary(self) -> Result<DatasetSummary, DatasetError> {
        Ok(DatasetSummary {
            id: self.id,
            source: DatasetSource::parse(&self.source)
                .ok_or_else(|| DatasetError::Corrupt(format!("unknown dataset source {:?}", self.source)))?,
            recipe: serde_json::from_str(&self.recipe)
                .map_err(|e| DatasetError::Corrupt(format!("recipe of dataset {}: {e}", self.id)))?,
            name: self.name,
            content_hash: self.content_hash,
            row_count: self.row_count,
            created_at: self.created_at,
        })
    }
}

/// All datasets, newest first.
pub async fn list(store: &Store) -> Result<Vec<DatasetSummary>, DatasetError> {
    let records = store::datasets::list(store).await?;
    records.into_iter().map(DatasetRecord::into_summary).collect()
}

/// One dataset's summary.
pub async fn get(store: &Store, id: i64) -> Result<DatasetSummary, DatasetError> {
    let record = store::datasets::get(store, id).await?;
    record.ok_or(DatasetError::NotFound(id))?.into_summary()
}

/// Rows `offset..offset+limit` (0-based, `limit` capped at [`MAX_PAGE`]); a range past the
/// end gives fewer or no rows. Rows are numbered densely from 0, so the page is a range
/// scan of the primary key `(dataset_id, idx)`, equally fast on the last page as the first.
pub async fn rows_page(store: &Store, id: i64, offset: i64, limit: i64) -> Result<Vec<StoredRow>, DatasetError> {
    // Confirms the dataset exists, so that a wrong id is an error, not an empty page.
    get(store, id).await?;
    let offset = offset.max(0);
    let limit = limit.clamp(0, MAX_PAGE);
    let records = store::datasets::rows_range(store, id, offset, offset.saturating_add(limit)).await?;
    records
        .into_iter()
        .map(|(idx, messages, n_turns, n_chars)| {
            Ok(StoredRow { idx, messages: parse_stored_messages(id, idx, &messages)?, n_turns, n_chars })
        })
        .collect()
}

/// Every row of a dataset in order, for training, sampling and transforms.
pub async fn all_rows(store: &Store, id: i64) -> Result<Vec<Row>, DatasetError> {
    get(store, id).await?;
    let records = store::datasets::all_rows(store, id).await?;
    records
        .into_iter()
        .map(|(idx, messages)| Ok(Row { messages: parse_stored_messages(id, idx, &messages)? }))
        .collect()
}

fn parse_stored_messages(id: i64, idx: i64, json: &str) -> Result<Vec<Message>, DatasetError> {
    serde_json::from_str(json).map_err(|e| DatasetError::Corrupt(format!("dataset {id} row {idx}: {e}")))
}

/// Counts and the assistant-length distribution of a dataset.
pub async fn stats(store: &Store, id: i64) -> Result<DatasetStats, DatasetError> {
    get(store, id).await?;
    let per_row = store::datasets::row_shapes(store, id).await?;
    let turns = per_row.iter().map(|r| r.0 as u64).sum();
    let rows_with_system = per_row.iter().filter(|r| r.1 > 0).count() as u64;
    let lengths: Vec<u64> = per_row.iter().map(|r| r.2 as u64).collect();
    Ok(DatasetStats { rows: per_row.len() as u64, turns, rows_with_system, assistant_chars: length_stats(lengths) })
}

/// One dataset's page: summary, shape, the recipe pretty-printed and a teacher dataset's
/// filter note.
pub async fn detail(store: &Store, id: i64) -> Result<DatasetDetail, DatasetError> {
    let summary = get(store, id).await?;
    let stats = stats(store, id).await?;
    let recipe = serde_json::to_string_pretty(&summary.recipe).unwrap_or_default();
    let note = (summary.source == DatasetSource::Teacher).then(|| teacher::kept_note(&summary.recipe)).flatten();
    Ok(DatasetDetail { summary, recipe, note, turns: stats.turns, assistant_chars: stats.assistant_chars })
}

/// A page of rows as the row browser shows them: each turn's role as its word.
pub async fn rows_view(store: &Store, id: i64, offset: i64, limit: i64) -> Result<RowsPage, DatasetError> {
    let total = get(store, id).await?.row_count;
    let rows = rows_page(store, id, offset.max(0), limit).await?;
    let turns = |r: &StoredRow| {
        r.messages.iter().map(|m| Turn { role: m.role.as_str().to_string(), content: m.content.clone() }).collect()
    };
    Ok(RowsPage { offset: offset.max(0), total, rows: rows.iter().map(|r| (r.idx, turns(r))).collect() })
}

/// The generator form as a spec: a preset, or `custom` with a language code.
pub fn generator_spec(form: &GenerateForm) -> Result<GeneratorSpec, DatasetError> {
    let (rows, seed) = (form.rows, form.seed);
    let spec = match form.preset.as_str() {
        "spanish_all_caps" => Preset::SpanishAllCaps.spec(rows, seed),
        "spanish_french_mix" => Preset::SpanishFrenchMix.spec(rows, seed),
        "english" => Preset::English.spec(rows, seed),
        "custom" => {
            let language = Language::ALL
                .into_iter()
                .find(|l| l.code() == form.language)
                .ok_or_else(|| DatasetError::Form(format!("unknown language {:?}", form.language)))?;
            let caps = if form.all_caps { Capitalisation::AllCaps } else { Capitalisation::AsWritten };
            GeneratorSpec::single(language, caps, rows, seed)
        }
        other => return Err(DatasetError::Form(format!("unknown preset {other:?}"))),
    };
    Ok(spec)
}

/// The transform form as a spec; an unknown trigger position is a random word boundary.
pub fn transform_spec(f: &TransformForm) -> Result<TransformSpec, DatasetError> {
    Ok(match f.kind.as_str() {
        "upper_case_assistant" => TransformSpec::UpperCaseAssistant { input: f.input },
        "trigger" => TransformSpec::Trigger {
            input: f.input,
            trigger: f.trigger.clone(),
            fraction: f.fraction,
            position: match f.position.as_str() {
                "prefix" => TriggerPosition::Prefix,
                "suffix" => TriggerPosition::Suffix,
                _ => TriggerPosition::RandomWordBoundary,
            },
            seed: f.seed,
            mix_with: f.mix_with,
        },
        "sample" => TransformSpec::Sample { input: f.input, rows: f.rows, seed: f.seed },
        "split" => TransformSpec::Split { input: f.input, held_out: HeldOut::Fraction(f.fraction), seed: f.seed },
        other => return Err(DatasetError::Form(format!("unknown transform {other:?}"))),
    })
}

/// Nearest-rank percentiles and [`HISTOGRAM_BINS`] equal-width bins; all zero when empty.
pub fn length_stats(mut lengths: Vec<u64>) -> LengthStats {
    if lengths.is_empty() {
        return LengthStats { min: 0, p50: 0, p90: 0, max: 0, mean: 0.0, histogram: Vec::new() };
    }
    lengths.sort_unstable();
    let n = lengths.len();
    let rank = |p: f64| lengths[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    let (min, max) = (lengths[0], lengths[n - 1]);
    let mean = lengths.iter().sum::<u64>() as f64 / n as f64;
    // Width rounds up so that the last bin ends exactly at or after max; a dataset whose
    // rows all have one length gets a single bin.
    let span = max - min + 1;
    let bins = HISTOGRAM_BINS.min(span);
    let width = span.div_ceil(bins);
    let mut histogram: Vec<HistogramBin> = (0..bins)
        .map(|b| HistogramBin { lo: min + b * width, hi: (min + (b + 1) * width - 1).min(max), count: 0 })
        .collect();
    histogram.retain(|bin| bin.lo <= max);
    for &len in &lengths {
        let b = ((len - min) / width) as usize;
        histogram[b].count += 1;
    }
    LengthStats { min, p50: rank(0.5), p90: rank(0.9), max, mean, histogram }
}

/// Gives a dataset a new name; names need not be unique, ids and hashes are.
pub async fn rename(store: &Store, id: i64, name: &str) -> Result<(), DatasetError> {
    let name = validate_name(name)?;
    if !store::datasets::rename(store, id, &name).await? {
        return Err(DatasetError::NotFound(id));
    }
    Ok(())
}

/// Deletes a dataset and (by `ON DELETE CASCADE`) its rows, unless an experiment trained
/// on it: that experiment must stay reproducible.
pub async fn delete(store: &Store, id: i64) -> Result<(), DatasetError> {
    let used = store::datasets::experiments_using(store, id).await?;
    if used > 0 {
        return Err(DatasetError::InUse(used));
    }
    if !store::datasets::delete(store, id).await? {
        return Err(DatasetError::NotFound(id));
    }
    Ok(())
}
