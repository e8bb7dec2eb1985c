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
    #[error("{0}")]
    Artifacts(#[from] crate::artifacts::ArtifactError),
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
pub async fn samples_csv<S: Sink>(store: &Store, filter: &SampleFilter, mut out: S) -> Result<u64, ExportError> {
    let judges = experiment_judges(store, filter.experiment_id).await?;
    let mut header: Vec<String> = SAMPLE_COLUMNS.iter().map(|c| c.to_string()).collect();
    for j in &judges {
        header.push(guard(&format!("{j}_score")).into_owned());
        header.push(guard(&format!("{j}_trait")).into_owned());
    }
    // A CSV writer per chunk (it borrows the sink, which is drained between chunks); every
    // record has the header's width, so the file is one consistent table.
    let mut w = csv::Writer::from_writer(&mut out);
    w.write_record(&header)?;
    w.flush()?;
    drop(w);
    let column_of: HashMap<&str, usize> = judges.iter().enumerate().map(|(i, j)| (j.as_str(), i)).collect();
    let mut written = 0u64;
    let mut chunks = SampleChunks::new(filter);
    while let Some(chunk) = chunks.next(store).await? {
        let mut w = csv::Writer::from_writer(&mut out);
        for s in &chunk {
            w.write_record(csv_record(s, &column_of))?;
        }
        w.flush()?;
        drop(w);
        written += chunk.len() as u64;
        out.drain().await?;
    }
    out.drain().await?;
    Ok(written)
}

/// Every sample matching a filter in id order, read in chunks of [`CHUNK`] (keyset paging,
/// so an experiment never sits in memory and each chunk costs the same).
struct SampleChunks<'a> {
    filter: &'a SampleFilter,
    after: i64,
}

impl<'a> SampleChunks<'a> {
    fn new(filter: &'a SampleFilter) -> Self {
        SampleChunks { filter, after: i64::MIN }
    }

    async fn next(&mut self, store: &Store) -> Result<Option<Vec<StoredSample>>, ExportError> {
        let chunk = samples::chunk_after(store, self.filter, self.after, CHUNK).await?;
        let Some(last) = chunk.last() else { return Ok(None) };
        self.after = last.id;
        Ok(Some(chunk))
    }
}

/// Where an export is written: an `io::Write` that is drained after each chunk, so a
/// streamed download ([`spool`]) hands each chunk on, and waits while its reader is behind,
/// instead of building the file in memory. Buffers (a `Vec`) and `io::sink()` drain at once.
pub trait Sink: Write + Send {
    /// Hands on what was written so far.
    fn drain(&mut self) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
}

impl Sink for Vec<u8> {
    async fn drain(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for std::io::Sink {
    async fn drain(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<T: Sink> Sink for &mut T {
    fn drain(&mut self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        (**self).drain()
    }
}

/// A [`Sink`] whose chunks come out of a stream (a response body): [`spool`] makes both.
pub struct Spool {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
}

/// A spool and the stream of what is written to it. The stream ends when the spool is
/// dropped; [`Spool::fail`] ends it with an error instead (the client sees a broken
/// download, never a short file that looks whole).
pub fn spool() -> (Spool, impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // Fused: a body wrapper (the compression layer's) may poll once more after the end,
    // which a bare `unfold` answers with a panic.
    let stream = futures_util::StreamExt::fuse(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    (Spool { buf: Vec::with_capacity(DOWNLOAD_CHUNK), tx }, stream)
}

impl Spool {
    /// Ends the stream with this error.
    pub async fn fail(self, e: impl std::fmt::Display) {
        let _ = self.tx.send(Err(std::io::Error::other(e.to_string()))).await;
    }
}

impl Write for Spool {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for Spool {
    async fn drain(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(DOWNLOAD_CHUNK)));
        self.tx
            .send(Ok(chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was abandoned"))
    }
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
pub async fn samples_jsonl<S: Sink>(store: &Store, filter: &SampleFilter, mut out: S) -> Result<u64, ExportError> {
    let mut written = 0u64;
    let mut chunks = SampleChunks::new(filter);
    while let Some(chunk) = chunks.next(store).await? {
        for s in &chunk {
            serde_json::to_writer(&mut out, s)?;
            out.write_all(b"\n")?;
        }
        written += chunk.len() as u64;
        out.drain().await?;
    }
    out.flush()?;
    out.drain().await?;
    Ok(written)
}

/// The header of the aggregates CSV.
pub const AGGREGATE_COLUMNS: [&str; 17] = [
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
    "seeds",
    "seed_mean",
    "seed_ci_low",
    "seed_ci_high",
];

/// Writes [`experiments::aggregates`] as CSV, one row per cell in its order: an empty
/// `question_key` or `seed` is the pooled cell; `ci_low`/`ci_high` are the Wilson 95 %
/// bounds; a cell pooled over two or more seeds also has their count and the mean over
/// seeds with its bootstrap bounds (`seed_*`); undefined values (no verdicts, no scores) are empty, never NaN. Returns the
/// number of rows written.
pub async fn aggregates_csv<S: Sink>(store: &Store, experiment_id: i64, mut out: S) -> Result<u64, ExportError> {
    let aggregates = experiments::aggregates(store, experiment_id).await?;
    let mut w = csv::Writer::from_writer(&mut out);
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
            a.seed_mean.map(|_| a.seed_rates.len().to_string()).unwrap_or_default(),
            num(a.seed_mean.map(|m| m.0)),
            num(a.seed_mean.map(|m| m.1)),
            num(a.seed_mean.map(|m| m.2)),
        ])?;
    }
    w.flush()?;
    drop(w);
    out.drain().await?;
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

/// A run's adapter folder (as PEFT saved it: `adapter_config.json`,
/// `adapter_model.safetensors`), read from the artefact store at `key`, as a zip stream
/// under the folder name `root`, so that unzipping gives a folder
/// `PeftModel.from_pretrained` loads. Streamed: each file goes from the store into the zip
/// and out in chunks, so a download never holds a multi-GB adapter in memory. Stored, not
/// deflated: the weights are floats that barely compress. An error after the first bytes
/// ends the stream with that error (the client sees a broken download, never a short zip
/// that looks whole: the zip's central directory comes last).
pub async fn adapter_zip(
    artifacts: &crate::artifacts::Artifacts,
    key: &str,
    root: &str,
) -> Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static, ExportError> {
    let files = artifacts.files(key).await?;
    if !files.iter().any(|(n, _)| n == "adapter_config.json") {
        return Err(ExportError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{key} in {} holds no adapter_config.json", artifacts.describe()),
        )));
    }
    let (spool, stream) = spool();
    let handle = tokio::runtime::Handle::current();
    let (artifacts, key, root) = (artifacts.clone(), key.to_owned(), root.to_owned());
    tokio::task::spawn_blocking(move || {
        // The zip crate writes synchronously, so it runs here and waits for the reader
        // through the runtime's handle.
        let mut out = Blocking { spool, handle: handle.clone() };
        let written = (|| -> std::io::Result<()> {
            let mut zip = zip::ZipWriter::new_stream(&mut out);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(files.iter().any(|(_, bytes)| *bytes >= u32::MAX as u64));
            for (name, _) in &files {
                zip.start_file(format!("{root}/{name}"), options).map_err(std::io::Error::other)?;
                let mut chunks = handle.block_on(artifacts.read(&key, name)).map_err(std::io::Error::other)?;
                while let Some(chunk) = handle.block_on(futures_util::StreamExt::next(&mut chunks)) {
                    zip.write_all(&chunk.map_err(std::io::Error::other)?)?;
                }
            }
            zip.finish().map_err(std::io::Error::other)?;
            Ok(())
        })();
        let Blocking { mut spool, handle } = out;
        if let Err(e) = written.and_then(|()| handle.block_on(spool.drain())) {
            tracing::warn!("adapter download of {key} failed: {e}");
            handle.block_on(spool.fail(e));
        }
    });
    Ok(stream)
}

/// Bytes per chunk of a streamed download.
const DOWNLOAD_CHUNK: usize = 256 << 10;

/// A [`Spool`] written from a blocking thread: drained (waiting for the reader) whenever a
/// chunk is full.
struct Blocking {
    spool: Spool,
    handle: tokio::runtime::Handle,
}

impl Write for Blocking {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.spool.write_all(data)?;
        if self.spool.buf.len() >= DOWNLOAD_CHUNK {
            self.handle.block_on(self.spool.drain())?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a run's adapter lies (its key in the artefact store), with the run's condition
/// and seed to name the download; `None` when the run does not exist, an inner `None`
/// when it has no adapter yet.
pub async fn run_adapter(store: &Store, run_id: i64) -> Result<Option<(String, i64, Option<String>)>, ExportError> {
    Ok(store::runs::adapter_of(store, run_id).await?)
}
