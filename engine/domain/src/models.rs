//! The model registry: which base models experiments may use, stored in the `models`
//! table. A row records where a model lives (a GGUF file or a Hugging Face folder) and
//! what it is (architecture, parameter count, size and a sha256 of its bytes), so that a
//! run can later name the exact weights it was trained from.
//!
//! Two rules keep the registry safe to expose in a web page:
//! - a row never owns files: registering reads the model, removing deletes only the row;
//! - a registered path is canonical (no `..`, no symlinks) and lies under one of the
//!   folders the server was started with (`--model-root`), so a form cannot point the
//!   server at arbitrary files. The built-in default model is registered by the server
//!   itself and needs no root.
//!
//! Inspecting a model reads headers only (GGUF metadata and tensor infos, safetensors
//! JSON headers), never the weights; only the hash reads every byte, streamed. The rows are
//! read and written through `store::models`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::store::{self, models::ModelRecord, models::NewModel};
use crate::Store;

/// The name the built-in default model is registered under.
pub const BUILTIN_NAME: &str = "SmolLM2-135M-Instruct";

/// The longest model name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Model families the ML core can load (see `ml::hf` and `ml::gguf`). Registering
/// anything else would list a model as ready that no run could use.
const HF_MODEL_TYPES: [&str; 3] = ["llama", "qwen2", "mistral"];
const GGUF_ARCHITECTURES: [&str; 1] = ["llama"];

/// A safetensors header larger than this is not a model we can use; the bound keeps a
/// corrupt length field from allocating gigabytes.
const MAX_SAFETENSORS_HEADER: u64 = 100 * 1024 * 1024;

/// How the weights are stored: the wire crate's type, shared with the pages.
pub use wire::models::{ModelInfo, ModelKind};

/// What [`inspect`] learns about a model without loading its weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspected {
    pub kind: ModelKind,
    pub architecture: String,
    pub n_params: u64,
    pub size_bytes: u64,
    pub sha256: String,
}

/// Errors of the model registry; each message is fit to show to the user.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {0} does not exist")]
    NotFound(i64),
    #[error("{}", outside_roots_message(path, resolved.as_deref(), roots))]
    OutsideRoots {
        /// The path as the user gave it.
        path: PathBuf,
        /// Where it leads after resolving `..` and symlinks, when that differs.
        resolved: Option<PathBuf>,
        roots: Vec<PathBuf>,
    },
    #[error("{0}")]
    Duplicate(String),
    #[error("{path} is not a usable model: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("invalid model name: {0}")]
    InvalidName(String),
    #[error("model “{name}” is the built-in default and cannot be removed")]
    Builtin { name: String },
    #[error("model “{name}” is in use by {}; delete those experiments first", wire::counted(.count.unsigned_abs(), "experiment", "experiments"))]
    InUse { name: String, count: i64 },
    #[error("stored model is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn outside_roots_message(path: &Path, resolved: Option<&Path>, roots: &[PathBuf]) -> String {
    let shown = match resolved {
        Some(r) => format!("{} (which resolves to {})", path.display(), r.display()),
        None => path.display().to_string(),
    };
    let roots = if roots.is_empty() {
        "none are configured".to_string()
    } else {
        roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    format!(
        "{shown} is outside the allowed model roots ({roots}); \
         start the server with --model-root to allow another folder"
    )
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.to_path_buf(), source }
}

fn invalid(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Invalid { path: path.to_path_buf(), reason: reason.into() }
}

/// Reads what the registry stores about a model, without loading its weights.
///
/// A file is read as GGUF: `general.architecture` and the parameter count from its
/// tensor infos. A folder is read as Hugging Face: it needs `config.json`,
/// `tokenizer.json` and either `model.safetensors` or `model.safetensors.index.json`
/// with every shard it lists (what `ml::hf` loads); parameters are counted from the
/// safetensors headers. Data that the headers promise but the file lacks (a truncated
/// download) makes the model invalid, so a registered model is one that can load.
///
/// `sha256` is of the GGUF file's bytes; for a folder it is over every file under it
/// (following symlinked files, as the Hugging Face cache uses them), sorted by relative
/// path, each contributing its `/`-separated relative path, a 0 byte, its length as 8
/// little-endian bytes and its content. The name and length keep two different folders
/// from hashing the same by moving bytes between files.
///
/// Blocking: it reads every byte of the model. Call it off the async runtime.
pub fn inspect(path: &Path) -> Result<Inspected, ModelError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        inspect_hf(path)
    } else {
        inspect_gguf(path)
    }
}

fn inspect_gguf(path: &Path) -> Result<Inspected, ModelError> {
    let file = File::open(path).map_err(io_err(path))?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    let mut reader = BufReader::new(file);
    let header = ml::gguf::read_header(&mut reader).map_err(|e| invalid(path, format!("not a GGUF file ({e})")))?;
    let architecture =
        header.architecture.ok_or_else(|| invalid(path, "the GGUF metadata has no general.architecture"))?;
    if !GGUF_ARCHITECTURES.contains(&architecture.as_str()) {
        return Err(invalid(
            path,
            format!("GGUF architecture {architecture:?} is not supported (only {})", GGUF_ARCHITECTURES.join(", ")),
        ));
    }
    let mut n_params = 0u64;
    for (name, elems, end) in &header.tensors {
        if *end > file_len {
            return Err(invalid(
                path,
                format!("the file is truncated: tensor {name} ends at byte {end}, the file has {file_len}"),
            ));
        }
        n_params += elems;
    }
    drop(reader);
    let sha256 = hash_file(path)?;
    Ok(Inspected { kind: ModelKind::Gguf, architecture, n_params, size_bytes: file_len, sha256 })
}

fn inspect_hf(dir: &Path) -> Result<Inspected, ModelError> {
    let config_path = dir.join("config.json");
    require_file(dir, "config.json")?;
    let config: serde_json::Value = read_json(&config_path)?;
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or_default();
    if !HF_MODEL_TYPES.contains(&model_type) {
        return Err(invalid(
            dir,
            format!("config.json has model_type {model_type:?}; supported: {}", HF_MODEL_TYPES.join(", ")),
        ));
    }
    let architecture = config
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
        .unwrap_or(model_type)
        .to_string();
    require_file(dir, "tokenizer.json")?;

    let shards: Vec<String> = if dir.join("model.safetensors.index.json").is_file() {
        let index_path = dir.join("model.safetensors.index.json");
        let index = read_json(&index_path)?;
        let map = index
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| invalid(&index_path, "it has no weight_map"))?;
        let names: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        if names.is_empty() {
            return Err(invalid(&index_path, "its weight_map lists no files"));
        }
        for name in &names {
            // The index is data from the folder: a shard name must not lead out of it.
            let mut parts = Path::new(name).components();
            if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
                return Err(invalid(&index_path, format!("shard {name:?} is not a file name in the folder")));
            }
            require_file(dir, name)?;
        }
        names.into_iter().map(String::from).collect()
    } else if dir.join("model.safetensors").is_file() {
        vec!["model.safetensors".to_string()]
    } else {
        return Err(invalid(dir, "model.safetensors (or model.safetensors.index.json with its shards) is missing"));
    };
    let mut n_params = 0u64;
    for shard in &shards {
        n_params += safetensors_params(&dir.join(shard))?;
    }
    let (size_bytes, sha256) = hash_folder(dir)?;
    Ok(Inspected { kind: ModelKind::Hf, architecture, n_params, size_bytes, sha256 })
}

fn require_file(dir: &Path, name: &str) -> Result<(), ModelError> {
    if dir.join(name).is_file() {
        Ok(())
    } else {
        Err(invalid(dir, format!("{name} is missing")))
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, ModelError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|e| invalid(path, format!("invalid JSON: {e}")))
}

/// One entry of a safetensors header.
#[derive(Deserialize)]
struct SafetensorsEntry {
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// Counts the elements of every tensor in a safetensors file from its header alone: an
/// 8-byte little-endian header length, then a JSON object from tensor name to dtype,
/// shape and byte offsets into the data that follows.
fn safetensors_params(path: &Path) -> Result<u64, ModelError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(|_| invalid(path, "too short to be a safetensors file"))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_SAFETENSORS_HEADER || 8 + header_len > file_len {
        return Err(invalid(path, format!("not a safetensors file (header length {header_len})")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io_err(path))?;
    let entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| invalid(path, format!("invalid safetensors header: {e}")))?;
    let data_len = file_len - 8 - header_len;
    let mut n_params = 0u64;
    for (name, value) in entries {
        // The only entry that is not a tensor: free-form string metadata.
        if name == "__metadata__" {
            continue;
        }
        let entry: SafetensorsEntry = serde_json::from_value(value)
            .map_err(|e| invalid(path, format!("invalid header entry for tensor {name}: {e}")))?;
        if entry.data_offsets.1 > data_len || entry.data_offsets.0 > entry.data_offsets.1 {
            return Err(invalid(
                path,
                format!("the file is truncated: tensor {name} needs data up to byte {}", entry.data_offsets.1),
            ));
        }
        n_params += entry
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| invalid(path, format!("tensor {name} has an impossible shape {:?}", entry.shape)))?;
    }
    Ok(n_params)
}

/// Streams a reader into a hasher; returns the bytes read.
fn hash_into(hasher: &mut Sha256, reader: &mut impl Read, path: &Path) -> Result<u64, ModelError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

fn hash_file(path: &Path) -> Result<String, ModelError> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path).map_err(io_err(path))?;
    hash_into(&mut hasher, &mut file, path)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The folder hash described in [`inspect`], for other folders of weights (a run's
/// adapter, named in a teacher dataset's recipe). Blocking: it reads every byte.
pub fn folder_sha256(dir: &Path) -> Result<String, ModelError> {
    hash_folder(dir).map(|(_, sha)| sha)
}

/// The folder hash described in [`inspect`], and the total size of the files hashed.
fn hash_folder(dir: &Path) -> Result<(u64, String), ModelError> {
    let mut files = Vec::new();
    collect_files(dir, "", &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    for rel in &files {
        let path = dir.join(rel);
        let mut file = File::open(&path).map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        hasher.update(rel.as_bytes());
        hasher.update([0u8]);
        hasher.update(len.to_le_bytes());
        let read = hash_into(&mut hasher, &mut file, &path)?;
        if read != len {
            // The length went into the hash before the bytes; a file that changed size
            // while we read it would give a hash of nothing that ever existed.
            return Err(invalid(&path, "the file changed while it was being hashed"));
        }
        size += len;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Relative `/`-separated paths of the files under `dir`. Real subfolders are walked;
/// symlinks to files count as files (the Hugging Face cache is made of them), symlinks to
/// folders are skipped, which also keeps a link cycle from recursing forever.
fn collect_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), ModelError> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(invalid(&entry.path(), "the file name is not valid UTF-8"));
        };
        let rel = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
        let file_type = entry.file_type().map_err(io_err(&entry.path()))?;
        if file_type.is_dir() {
            collect_files(&entry.path(), &rel, out)?;
        } else if file_type.is_file()
            || (file_type.is_symlink() && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()))
        {
            out.push(rel);
        }
    }
    Ok(())
}

/// Trims a user-given name and rejects empty or overlong ones.
pub fn validate_name(name: &str) -> Result<String, ModelError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ModelError::InvalidName("the name is empty".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ModelError::InvalidName(format!("the name is longer than {MAX_NAME_CHARS} characters")));
    }
    Ok(name.to_owned())
}

/// Resolves `path` and checks that it lies under one of `allowed_roots`. Both sides are
/// canonicalised, so neither `..` nor a symlink can lead out of a root, and a root given
/// through a symlink still matches. A path that does not exist is reported as missing only
/// when it would lie under a root: for anything else the answer is the same refusal as
/// for an existing path, so the form cannot be used to probe the server's file system.
pub fn resolve_under_roots(path: &Path, allowed_roots: &[PathBuf]) -> Result<PathBuf, ModelError> {
    let roots: Vec<PathBuf> =
        allowed_roots.iter().map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| lexical_absolute(r))).collect();
    let outside = |resolved: Option<PathBuf>| ModelError::OutsideRoots {
        path: path.to_path_buf(),
        resolved: resolved.filter(|r| r != path),
        roots: roots.clone(),
    };
    match std::fs::canonicalize(path) {
        Ok(canonical) => {
            if roots.iter().any(|root| canonical.starts_with(root)) {
                Ok(canonical)
            } else {
                Err(outside(Some(canonical)))
            }
        }
        Err(_) => {
            let lexical = lexical_absolute(path);
            if roots.iter().any(|root| lexical.starts_with(root)) {
                Err(invalid(path, "no such file or folder"))
            } else {
                Err(outside(None))
            }
        }
    }
}

/// An absolute form of `path` with `.` and `..` removed by text alone, for paths that
/// cannot be canonicalised because they do not exist.
fn lexical_absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn path_text(path: &Path) -> Result<&str, ModelError> {
    path.to_str().ok_or_else(|| invalid(path, "the path is not valid UTF-8"))
}

/// Registers a GGUF file or Hugging Face folder under `name`. The path must lie under one
/// of `allowed_roots` (see [`resolve_under_roots`]); the model is inspected (and hashed)
/// on a blocking thread. A second registration of the same path or name is refused.
pub async fn register(
    store: &Store,
    name: &str,
    path: &Path,
    allowed_roots: &[PathBuf],
) -> Result<ModelInfo, ModelError> {
    let name = validate_name(name)?;
    let canonical = resolve_under_roots(path, allowed_roots)?;
    refuse_duplicate(store, &name, &canonical).await?;
    let inspected = inspect_blocking(canonical.clone()).await?;
    insert(store, &name, &canonical, &inspected, false).await
}

/// Registers the embedded default model (`path`, normally `DATA_DIR/models/…gguf`) as the
/// built-in model, once. Idempotent: when the path is already registered, that row is
/// returned without hashing the file again. Returns `None` when the file is absent; a row
/// registered earlier then lists as not ready.
///
/// If a built-in row with the same hash points at another path (the data directory
/// moved), the row follows the file. A different file under the built-in name is
/// registered beside it with its short hash in the name, so the old row, which runs
/// may reference, keeps meaning the weights it was made with.
pub async fn ensure_builtin(store: &Store, path: &Path) -> Result<Option<ModelInfo>, ModelError> {
    let Ok(canonical) = tokio::fs::canonicalize(path).await else {
        return Ok(None);
    };
    let path_str = path_text(&canonical)?.to_string();
    if let Some(existing) = by_path(store, &path_str).await? {
        return Ok(Some(existing));
    }
    let inspected = inspect_blocking(canonical.clone()).await?;
    if let Some(id) = store::models::builtin_with_sha256(store, &inspected.sha256).await? {
        store::models::set_path(store, id, &path_str).await?;
        return get(store, id).await;
    }
    let name = if by_name(store, BUILTIN_NAME).await?.is_none() {
        BUILTIN_NAME.to_string()
    } else {
        format!("{BUILTIN_NAME} ({})", &inspected.sha256[..12])
    };
    insert(store, &name, &canonical, &inspected, true).await.map(Some)
}

async fn inspect_blocking(path: PathBuf) -> Result<Inspected, ModelError> {
    let for_error = path.clone();
    tokio::task::spawn_blocking(move || inspect(&path)).await.map_err(|e| ModelError::Io {
        path: for_error,
        source: std::io::Error::other(format!("the inspection task failed: {e}")),
    })?
}

async fn refuse_duplicate(store: &Store, name: &str, canonical: &Path) -> Result<(), ModelError> {
    if let Some(existing) = by_path(store, path_text(canonical)?).await? {
        return Err(ModelError::Duplicate(format!(
            "{} is already registered as “{}”",
            canonical.display(),
            existing.name
        )));
    }
    if by_name(store, name).await?.is_some() {
        return Err(ModelError::Duplicate(format!("a model named “{name}” is already registered")));
    }
    Ok(())
}

async fn insert(
    store: &Store,
    name: &str,
    canonical: &Path,
    inspected: &Inspected,
    builtin: bool,
) -> Result<ModelInfo, ModelError> {
    let new = NewModel {
        name,
        kind: inspected.kind,
        path: path_text(canonical)?,
        architecture: &inspected.architecture,
        n_params: inspected.n_params as i64,
        size_bytes: inspected.size_bytes as i64,
        sha256: &inspected.sha256,
        builtin,
    };
    match store::models::insert(store, &new).await {
        Ok(id) => get(store, id).await?.ok_or(ModelError::NotFound(id)),
        // Someone registered the same name or path while we were hashing: the checks
        // before hashing give the precise message.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            refuse_duplicate(store, name, canonical).await?;
            Err(ModelError::Duplicate(format!("{} or “{name}” is already registered", canonical.display())))
        }
        Err(e) => Err(e.into()),
    }
}

impl ModelRecord {
    async fn into_info(self) -> Result<ModelInfo, ModelError> {
        let kind = ModelKind::parse(&self.kind)
            .ok_or_else(|| ModelError::Corrupt(format!("unknown model kind {:?}", self.kind)))?;
        let ready = match tokio::fs::metadata(&self.path).await {
            Ok(meta) => match kind {
                ModelKind::Gguf => meta.is_file(),
                ModelKind::Hf => meta.is_dir(),
            },
            Err(_) => false,
        };
        Ok(ModelInfo {
            id: self.id,
            name: self.name,
            kind,
            path: self.path,
            architecture: self.architecture,
            n_params: self.n_params as u64,
            size_bytes: self.size_bytes as u64,
            sha256: self.sha256,
            builtin: self.builtin != 0,
            ready,
            created_at: self.created_at,
        })
    }
}

/// Checks a stored row's files and turns it into what the registry lists.
async fn info(record: Option<ModelRecord>) -> Result<Option<ModelInfo>, ModelError> {
    match record {
        Some(r) => Ok(Some(r.into_info().await?)),
        None => Ok(None),
    }
}

/// Every registered model: the built-in first, then the others by name.
pub async fn list(store: &Store) -> Result<Vec<ModelInfo>, ModelError> {
    let records = store::models::list(store).await?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        out.push(r.into_info().await?);
    }
    Ok(out)
}

pub async fn get(store: &Store, id: i64) -> Result<Option<ModelInfo>, ModelError> {
    info(store::models::get(store, id).await?).await
}

pub async fn by_name(store: &Store, name: &str) -> Result<Option<ModelInfo>, ModelError> {
    info(store::models::by_name(store, name).await?).await
}

async fn by_path(store: &Store, path: &str) -> Result<Option<ModelInfo>, ModelError> {
    info(store::models::by_path(store, path).await?).await
}

/// Removes a model from the registry; its files stay where they are. The built-in model
/// and models that experiments use are refused: runs must keep pointing at the weights
/// they were made with.
pub async fn remove(store: &Store, id: i64) -> Result<(), ModelError> {
    // One statement decides and deletes, so an experiment created meanwhile cannot slip
    // between the check and the delete; the reason is looked up only when nothing went.
    if store::models::delete_unused(store, id).await? {
        return Ok(());
    }
    let model = get(store, id).await?.ok_or(ModelError::NotFound(id))?;
    if model.builtin {
        return Err(ModelError::Builtin { name: model.name });
    }
    let count = store::models::experiments_using(store, id).await?;
    Err(ModelError::InUse { name: model.name, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_absolute_removes_dots() {
        assert_eq!(lexical_absolute(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(lexical_absolute(Path::new("/a/../../b")), PathBuf::from("/b"));
    }

    #[test]
    fn a_root_is_a_whole_path_prefix_not_a_string_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("models");
        let sibling = dir.path().join("models2");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&sibling).unwrap();
        let err = resolve_under_roots(&sibling, std::slice::from_ref(&root)).unwrap_err();
        assert!(matches!(err, ModelError::OutsideRoots { .. }), "{err}");
    }

    #[test]
    fn a_missing_path_outside_the_roots_is_refused_not_reported_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("models");
        std::fs::create_dir_all(&root).unwrap();
        let inside = resolve_under_roots(&root.join("nope"), std::slice::from_ref(&root)).unwrap_err();
        assert!(inside.to_string().contains("no such file or folder"), "{inside}");
        let outside = resolve_under_roots(&dir.path().join("nope"), std::slice::from_ref(&root)).unwrap_err();
        assert!(matches!(outside, ModelError::OutsideRoots { .. }), "{outside}");
    }
}
