//! Exporting results for analysis elsewhere (pandas, R, a spreadsheet): an experiment's
//! samples with every judge's score and verdict, as CSV (one row per sample, one column
//! pair per judge) or JSONL (one object per sample with its `judgements`), and the
//! aggregates (trait rates with Wilson intervals) as CSV.
//!
//! Samples are read in id-ordered chunks of [`CHUNK`] (keyset paging through
//! `samples::chunk_after`) and written as they come, so an export of 100,000 samples
//! holds one chunk in memory, never the experiment. The writer is called on the calling
//! task: give it a file or a buffer; a slow network socket would hold the task up.

use std::collections::HashMap;
use std::io::Write;

use crate::experiments::{self, ExperimentError};
use crate::samples::{self, SampleFilter, StoredSample};
use crate::store;
use crate::Store;

/// Samples read per query.
pub const CHUNK: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Experiment(#[from] ExperimentError),
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode a sample as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The fixed columns of the samples CSV, before the judges' column pairs.
pub const SAMPLE_COLUMNS: [&str; 13] = [
    "id",
    "run_id",
    "condition",
    "seed",
    "test_prompt",
    "system_text",
    "question_key",
    "paraphrase",
    "question",
    "sample_idx",
    "completion",
    "n_tokens",
    "finished",
];

/// Writes the samples matching `filter` (every filter applies; its sort, offset and limit
/// do not: rows come in id order, all of them) as CSV with a header. After the fixed
/// columns come `<judge>_score` and `<judge>_trait` for every judge that judged any of the
/// experiment's samples, in name order; `_trait` is `1`, `0`, or empty when undetermined,
/// and both are empty when that judge has no judgement for the sample. Returns the number
/// of samples written.
pub async fn samples_csv<W: Write>(store: &Store, filter: &SampleFilter, out: W) -> Result<u64, ExportError> {
    let judges = experiment_judges(store, filter.experiment_id).await?;
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = SAMPLE_COLUMNS.iter().map(|c| c.to_string()).collect();
    for j in &judges {
        header.push(guard(&format!("{j}_score")).into_owned());
        header.push(guard(&format!("{j}_trait")).into_owned());
    }
    w.write_record(&header)?;
    let column_of: HashMap<&str, usize> = judges.iter().enumerate().map(|(i, j)| (j.as_str(), i)).collect();
    let written = each_sample(store, filter, |s| Ok(w.write_record(csv_record(s, &column_of))?)).await?;
    w.flush()?;
    Ok(written)
}

/// Calls `write` on every sample matching `filter` in id order, read in chunks of
/// [`CHUNK`] (keyset paging, so an experiment never sits in memory); returns how many.
async fn each_sample(
    store: &Store,
    filter: &SampleFilter,
    mut write: impl FnMut(&StoredSample) -> Result<(), ExportError>,
) -> Result<u64, ExportError> {
    let mut written = 0u64;
    let mut after = i64::MIN;
    loop {
        let chunk = samples::chunk_after(store, filter, after, CHUNK).await?;
        let Some(last) = chunk.last() else { break };
        after = last.id;
        for s in &chunk {
            write(s)?;
            written += 1;
        }
    }
    Ok(written)
}

fn csv_record(s: &StoredSample, column_of: &HashMap<&str, usize>) -> Vec<String> {
    let mut judged: Vec<(String, String)> = vec![(String::new(), String::new()); column_of.len()];
    for j in &s.judgements {
        if let Some(&i) = column_of.get(j.judge.as_str()) {
            judged[i] = (
                j.score.map(|v| v.to_string()).unwrap_or_default(),
                j.trait_present.map(|t| if t { "1" } else { "0" }.to_string()).unwrap_or_default(),
            );
        }
    }
    let mut record = vec![
        s.id.to_string(),
        s.run_id.to_string(),
        guard(&s.condition).into_owned(),
        s.seed.to_string(),
        guard(&s.test_prompt).into_owned(),
        s.system_text.as_deref().map(|t| guard(t).into_owned()).unwrap_or_default(),
        guard(&s.question_key).into_owned(),
        s.paraphrase.to_string(),
        guard(&s.question).into_owned(),
        s.sample_idx.to_string(),
        guard(&s.completion).into_owned(),
        s.n_tokens.to_string(),
        if s.finished { "1" } else { "0" }.to_string(),
    ];
    for (score, present) in judged {
        record.push(score);
        record.push(present);
    }
    record
}

/// Writes the samples matching `filter` (as [`samples_csv`] reads them) as JSON Lines: one
/// [`StoredSample`] per line, with its `judgements` (including each judge's raw output).
/// Text is written as it is: JSON has no formula cells to guard against.
pub async fn samples_jsonl<W: Write>(store: &Store, filter: &SampleFilter, mut out: W) -> Result<u64, ExportError> {
    let written = each_sample(store, filter, |s| {
        serde_json::to_writer(&mut out, s)?;
        Ok(out.write_all(b"\n")?)
    })
    .await?;
    out.flush()?;
    Ok(written)
}

/// The header of the aggregates CSV.
pub const AGGREGATE_COLUMNS: [&str; 13] = [
    "condition",
    "test_prompt",
    "judge",
    "question_key",
    "seed",
    "n",
    "determined",
    "trait_count",
    "unscored",
    "rate",
    "ci_low",
    "ci_high",
    "mean_score",
];

/// Writes [`experiments::aggregates`] as CSV, one row per cell in its order: an empty
/// `question_key` or `seed` is the pooled cell; `ci_low`/`ci_high` are the Wilson 95 %
/// bounds; undefined values (no verdicts, no scores) are empty, never NaN. Returns the
/// number of rows written.
pub async fn aggregates_csv<W: Write>(store: &Store, experiment_id: i64, out: W) -> Result<u64, ExportError> {
    let aggregates = experiments::aggregates(store, experiment_id).await?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record(AGGREGATE_COLUMNS)?;
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for a in &aggregates {
        w.write_record([
            guard(&a.condition).into_owned(),
            guard(&a.test_prompt).into_owned(),
            guard(&a.judge).into_owned(),
            a.question_key.as_deref().map(|k| guard(k).into_owned()).unwrap_or_default(),
            a.seed.map(|s| s.to_string()).unwrap_or_default(),
            a.n.to_string(),
            a.determined.to_string(),
            a.trait_count.to_string(),
            a.unscored.to_string(),
            num(a.rate),
            num(a.ci_low),
            num(a.ci_high),
            num(a.mean_score),
        ])?;
    }
    w.flush()?;
    Ok(aggregates.len() as u64)
}

/// Every judge that judged a sample of the experiment, by name.
async fn experiment_judges(store: &Store, experiment_id: i64) -> Result<Vec<String>, sqlx::Error> {
    store::samples::judges_of_experiment(store, experiment_id).await
}

/// Guards a text cell against CSV (formula) injection: spreadsheets run a cell that starts
/// with `=`, `+`, `-` or `@` (and, in some, a tab or carriage return) as a formula, and
/// model output or a prompt can start that way, e.g. `=HYPERLINK(...)`. Such cells get a
/// leading `'`, which spreadsheets hide and treat as "text". Only the CSV exports do this
/// (JSONL keeps text exact) and only text cells (numbers such as a negative score are
/// written as they are); readers that want the exact text should use the JSONL export.
pub fn guard(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Writes a run's adapter folder (as PEFT saved it: `adapter_config.json`,
/// `adapter_model.safetensors`) into a zip under the folder name `root`, so that unzipping
/// gives a folder `PeftModel.from_pretrained` loads. Stored, not deflated: the weights are
/// floats that barely compress, and the folder is a few MB.
pub fn adapter_zip<W: Write + std::io::Seek>(dir: &std::path::Path, root: &str, out: W) -> Result<u64, ExportError> {
    let io = |e: std::io::Error| ExportError::Io(e);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if !names.iter().any(|n| n == "adapter_config.json") {
        return Err(ExportError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} holds no adapter_config.json", dir.display()),
        )));
    }
    let mut zip = zip::ZipWriter::new(out);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(false);
    for name in &names {
        zip.start_file(format!("{root}/{name}"), options).map_err(|e| ExportError::Io(std::io::Error::other(e)))?;
        let mut f = std::fs::File::open(dir.join(name)).map_err(io)?;
        std::io::copy(&mut f, &mut zip).map_err(io)?;
    }
    zip.finish().map_err(|e| ExportError::Io(std::io::Error::other(e)))?;
    Ok(names.len() as u64)
}

/// Where a run's adapter lies (relative to the data directory), with the run's condition
/// and seed to name the download; `None` when the run does not exist, an inner `None`
/// when it has no adapter yet.
pub async fn run_adapter(store: &Store, run_id: i64) -> Result<Option<(String, i64, Option<String>)>, ExportError> {
    Ok(store::runs::adapter_of(store, run_id).await?)
}
