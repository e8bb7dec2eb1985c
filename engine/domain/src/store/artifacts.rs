//! Run artefacts (training checkpoints, trained adapters) in a store that every node of a
//! deployment reaches: a directory (the data directory by default; on a cluster, the NFS or
//! Lustre path every machine mounts) or an S3-compatible bucket (`s3://BUCKET/PREFIX`),
//! both through `object_store`, so the rest of the engine has one API for either.
//!
//! An artefact is a *folder* of files under a key such as `runs/7/adapter` (the key is
//! what `runs.adapter_dir` records). Candle reads files, so a worker trains into a local
//! scratch folder and [`Artifacts::put_folder`] copies the result in; readers get a local
//! copy back with [`Artifacts::local_folder`] / [`Artifacts::fetch_folder`].
//!
//! Invariants:
//! - **A folder is complete once its manifest exists, and only then.** Each file is one
//!   atomic put (a directory store writes a staging file and renames it; a bucket completes
//!   a multipart upload or a single PUT), and the manifest, listing every file with its
//!   size and sha256, is written last. A writer killed midway leaves no manifest, so no
//!   reader ever takes a half-written checkpoint for a whole one.
//! - **Everything fetched is checked** against the manifest (size and sha256) before it is
//!   renamed into place locally; a mismatch is an error, never a silently wrong model.
//! - **A manifest names its owner** (the run and the experiment's content hash), so a
//!   store reused by a second database (a reset, or two deployments on one bucket prefix)
//!   cannot hand one run another run's weights: see [`Artifacts::folder_owner`].
//! - Credentials come from the environment (or files it names), never from a request, and
//!   [`Artifacts::describe`] shows the location without them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The file written last into every complete folder.
pub const MANIFEST: &str = "inoculab-manifest.json";

/// Files at least this large go up as multipart uploads (S3 caps a single PUT at 5 GB, and
/// a part at a time keeps memory flat); smaller ones as one PUT.
const PART_BYTES: usize = 16 << 20;
/// Read buffer for hashing and copying.
const CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact store {0}")]
    Config(String),
    #[error("artifact store {location}: {key}: {source}")]
    Store { location: String, key: String, source: object_store::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("artifact store {location}: cannot complete the upload of {key}: {source}")]
    Upload { location: String, key: String, source: std::io::Error },
    #[error("artifact store {location}: {key} is not a complete folder (no {MANIFEST}: its writer did not finish)")]
    Incomplete { location: String, key: String },
    #[error("artifact store {location}: {key}: {what}")]
    Corrupt { location: String, key: String, what: String },
}

impl ArtifactError {
    /// True when the folder (or file) does not exist or never completed.
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            ArtifactError::Incomplete { .. }
                | ArtifactError::Store { source: object_store::Error::NotFound { .. }, .. }
        )
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io { path: path.to_owned(), source }
}

/// What a complete folder holds: written last, read first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Who wrote the folder (see [`Artifacts::folder_owner`]); empty when nobody said.
    #[serde(default)]
    pub owner: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Files readable in place.
    Directory(PathBuf),
    /// Folders are downloaded into this local cache before use.
    Bucket { cache: PathBuf },
}

/// The artefact store of a deployment. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Artifacts {
    inner: Arc<dyn ObjectStore>,
    kind: Kind,
    /// For messages and logs: the directory or `s3://bucket/prefix`, never credentials.
    location: String,
}

impl Artifacts {
    /// A directory store rooted at `root` (created if missing).
    pub fn directory(root: &Path) -> Result<Artifacts, ArtifactError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let root = root.canonicalize().map_err(io(root))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| ArtifactError::Config(format!("{}: {e}", root.display())))?;
        Ok(Artifacts { inner: Arc::new(fs), location: root.display().to_string(), kind: Kind::Directory(root) })
    }

    /// The store `--artifacts` names: `None` (or empty) for the data directory itself, a
    /// path or `file://` URL for a directory, `s3://BUCKET[/PREFIX]` for a bucket. A
    /// bucket's endpoint, region and credentials come from the standard `AWS_*` variables
    /// (`AWS_ENDPOINT_URL` / `AWS_ENDPOINT` for an S3-compatible server, `AWS_ALLOW_HTTP=true`
    /// for one without TLS), or from files named by `AWS_ACCESS_KEY_ID_FILE` and
    /// `AWS_SECRET_ACCESS_KEY_FILE` (mounted secrets); folders it hands out are cached under
    /// `DATA_DIR/artifact-cache`.
    pub fn open(location: Option<&str>, data_dir: &Path) -> Result<Artifacts, ArtifactError> {
        let location = location.map(str::trim).filter(|l| !l.is_empty());
        let Some(location) = location else { return Artifacts::directory(data_dir) };
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || bucket.contains(['@', ':', '?', '#']) {
                // Not echoed: a mistyped URL may carry a key.
                return Err(ArtifactError::Config(
                    "URL: expected s3://BUCKET or s3://BUCKET/PREFIX (credentials go in AWS_* variables, never in the URL)"
                        .into(),
                ));
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(id) = secret_file("AWS_ACCESS_KEY_ID_FILE")? {
                b = b.with_access_key_id(id);
            }
            if let Some(key) = secret_file("AWS_SECRET_ACCESS_KEY_FILE")? {
                b = b.with_secret_access_key(key);
            }
            // `from_env` reads AWS_ENDPOINT; newer AWS tools name it AWS_ENDPOINT_URL.
            if std::env::var_os("AWS_ENDPOINT").is_none() {
                if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                    b = b.with_endpoint(endpoint);
                }
            }
            let s3 = b.build().map_err(|e| ArtifactError::Config(format!("{location:?}: {e}")))?;
            let prefix = prefix.trim_matches('/');
            let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                let p = Key::parse(prefix).map_err(|e| ArtifactError::Config(format!("{location:?}: {e}")))?;
                Arc::new(object_store::prefix::PrefixStore::new(s3, p))
            };
            let shown = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
            return Ok(Artifacts {
                inner,
                location: shown,
                kind: Kind::Bucket { cache: data_dir.join("artifact-cache") },
            });
        }
        let dir = match location.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None if location.contains("://") => {
                return Err(ArtifactError::Config(format!(
                    "{:?}: only a directory or s3://BUCKET[/PREFIX] is supported",
                    location.split("://").next().unwrap_or("")
                )))
            }
            None => PathBuf::from(location),
        };
        Artifacts::directory(&dir)
    }

    /// Where the store is, for messages: a directory or `s3://bucket/prefix`.
    pub fn describe(&self) -> &str {
        &self.location
    }

    /// Whether files are read in place (a directory) rather than downloaded (a bucket).
    pub fn is_directory(&self) -> bool {
        matches!(self.kind, Kind::Directory(_))
    }

    fn key(&self, key: &str) -> Result<Key, ArtifactError> {
        // `parse` refuses empty segments and `.`/`..`, so a key never leaves the store.
        Key::parse(key).map_err(|e| self.corrupt(key, format!("not a valid key: {e}")))
    }

    fn store_err(&self, key: &str) -> impl FnOnce(object_store::Error) -> ArtifactError + '_ {
        let key = key.to_owned();
        move |source| ArtifactError::Store { location: self.location.clone(), key, source }
    }

    fn corrupt(&self, key: &str, what: String) -> ArtifactError {
        ArtifactError::Corrupt { location: self.location.clone(), key: key.to_owned(), what }
    }

    /// Copies the files of the local folder `dir` (not its subfolders) to `key`, then writes
    /// the manifest naming `owner`. A folder already complete at `key` is replaced: its
    /// manifest goes first, so it is incomplete (never mixed) while the new files arrive.
    pub async fn put_folder(&self, key: &str, dir: &Path, owner: &str) -> Result<Manifest, ArtifactError> {
        let folder = self.key(key)?;
        let mut names: Vec<String> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io(dir))? {
            let e = e.map_err(io(dir))?;
            if e.file_type().map_err(io(dir))?.is_file() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name != MANIFEST {
                    names.push(name);
                }
            }
        }
        names.sort();
        match self.inner.delete(&folder.clone().join(MANIFEST)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.store_err(key)(e)),
        }
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            let path = dir.join(&name);
            let (bytes, sha256) = self.put_file(&folder.clone().join(name.as_str()), &path).await?;
            files.push(FileEntry { name, bytes, sha256 });
        }
        // A directory store's files reach the disk before the manifest that vouches for
        // them, and the manifest before the caller records the folder (object_store's
        // rename into place does not fsync; a power cut could otherwise leave a complete
        // manifest over empty files).
        if let Kind::Directory(root) = &self.kind {
            let at = root.join(folder.as_ref());
            for f in &files {
                fsync(&at.join(&f.name)).await?;
            }
            fsync(&at).await?;
        }
        let manifest = Manifest { owner: owner.to_owned(), files };
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        self.inner.put(&folder.clone().join(MANIFEST), Bytes::from(json).into()).await.map_err(self.store_err(key))?;
        if let Kind::Directory(root) = &self.kind {
            let at = root.join(folder.as_ref());
            fsync(&at.join(MANIFEST)).await?;
            fsync(&at).await?;
            if let Some(parent) = at.parent() {
                fsync(parent).await?;
            }
        }
        Ok(manifest)
    }

    /// One file up, hashed on the way; (bytes, sha256).
    async fn put_file(&self, to: &Key, from: &Path) -> Result<(u64, String), ArtifactError> {
        let mut file = tokio::fs::File::open(from).await.map_err(io(from))?;
        let mut w = object_store::buffered::BufWriter::with_capacity(self.inner.clone(), to.clone(), PART_BYTES);
        let mut h = Sha256::new();
        let mut total = 0u64;
        let copied: Result<(), ArtifactError> = async {
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = file.read(&mut buf).await.map_err(io(from))?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                h.update(&buf);
                total += n as u64;
                w.put(Bytes::from(buf)).await.map_err(self.store_err(to.as_ref()))?;
            }
        }
        .await;
        if let Err(e) = copied {
            // Leaves no half object behind: the upload is aborted, not completed.
            let _ = w.abort().await;
            return Err(e);
        }
        // Completes the upload (a single PUT, or the multipart's completion): the object
        // appears whole here or not at all. A failed completion leaves at most an unfinished
        // multipart upload, which no reader sees.
        w.shutdown().await.map_err(|source| ArtifactError::Upload {
            location: self.location.clone(),
            key: to.to_string(),
            source,
        })?;
        Ok((total, hex::encode(h.finalize())))
    }

    /// The manifest of the folder at `key`; [`ArtifactError::Incomplete`] when there is none.
    pub async fn manifest(&self, key: &str) -> Result<Manifest, ArtifactError> {
        let path = self.key(key)?.join(MANIFEST);
        let bytes = match self.inner.get(&path).await {
            Ok(r) => r.bytes().await.map_err(self.store_err(key))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ArtifactError::Incomplete { location: self.location.clone(), key: key.to_owned() })
            }
            Err(e) => return Err(self.store_err(key)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| self.corrupt(key, format!("unreadable {MANIFEST}: {e}")))
    }

    /// The manifest of the folder at `key`, `None` when there is no complete folder there.
    async fn manifest_if_any(&self, key: &str) -> Result<Option<Manifest>, ArtifactError> {
        match self.manifest(key).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_missing() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether a complete folder is at `key`.
    pub async fn has_folder(&self, key: &str) -> Result<bool, ArtifactError> {
        Ok(self.manifest_if_any(key).await?.is_some())
    }

    /// The owner recorded in the folder's manifest (`None`: no complete folder there).
    pub async fn folder_owner(&self, key: &str) -> Result<Option<String>, ArtifactError> {
        Ok(self.manifest_if_any(key).await?.map(|m| m.owner))
    }

    /// The folders directly under `prefix`, sorted by name, each with whether it is
    /// complete (an incomplete one is a writer's leftover: never read it, delete it).
    pub async fn folders(&self, prefix: &str) -> Result<Vec<(String, bool)>, ArtifactError> {
        let p = self.key(prefix)?;
        let listed = match self.inner.list_with_delimiter(Some(&p)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(vec![]),
            Err(e) => return Err(self.store_err(prefix)(e)),
        };
        let mut out = Vec::new();
        for sub in listed.common_prefixes {
            let Some(name) = sub.filename().map(str::to_owned) else { continue };
            let complete = self.has_folder(&format!("{prefix}/{name}")).await?;
            out.push((name, complete));
        }
        out.sort();
        Ok(out)
    }

    /// Downloads the complete folder at `key` into `dest` (replacing it), checking every
    /// file against the manifest; assembled beside `dest` and renamed, so `dest` is whole or
    /// absent.
    pub async fn fetch_folder(&self, key: &str, dest: &Path) -> Result<Manifest, ArtifactError> {
        let manifest = self.manifest(key).await?;
        self.download(key, &manifest, dest).await?;
        Ok(manifest)
    }

    /// [`Artifacts::fetch_folder`] with the manifest already read.
    async fn download(&self, key: &str, manifest: &Manifest, dest: &Path) -> Result<(), ArtifactError> {
        let folder = self.key(key)?;
        let tmp = dest.with_extension("partial");
        if tmp.exists() {
            tokio::fs::remove_dir_all(&tmp).await.map_err(io(&tmp))?;
        }
        tokio::fs::create_dir_all(&tmp).await.map_err(io(&tmp))?;
        for f in &manifest.files {
            if f.name.contains(['/', '\\']) || f.name.starts_with('.') {
                return Err(self.corrupt(key, format!("the manifest names a file outside its folder: {:?}", f.name)));
            }
            let to = tmp.join(&f.name);
            let mut out = tokio::fs::File::create(&to).await.map_err(io(&to))?;
            let mut stream = self
                .inner
                .get(&folder.clone().join(f.name.as_str()))
                .await
                .map_err(self.store_err(&format!("{key}/{}", f.name)))?
                .into_stream();
            let mut h = Sha256::new();
            let mut total = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(self.store_err(&format!("{key}/{}", f.name)))?;
                h.update(&chunk);
                total += chunk.len() as u64;
                out.write_all(&chunk).await.map_err(io(&to))?;
            }
            out.sync_all().await.map_err(io(&to))?;
            let sha = hex::encode(h.finalize());
            if total != f.bytes || sha != f.sha256 {
                return Err(self.corrupt(
                    key,
                    format!(
                        "{} does not match its manifest ({total} bytes, sha256 {sha}; expected {} bytes, {})",
                        f.name, f.bytes, f.sha256
                    ),
                ));
            }
        }
        let json = serde_json::to_vec_pretty(manifest).expect("a manifest serialises");
        let m = tmp.join(MANIFEST);
        tokio::fs::write(&m, json).await.map_err(io(&m))?;
        fsync(&m).await?;
        fsync(&tmp).await?;
        if dest.exists() {
            tokio::fs::remove_dir_all(dest).await.map_err(io(dest))?;
        }
        tokio::fs::rename(&tmp, dest).await.map_err(io(dest))?;
        if let Some(parent) = dest.parent() {
            fsync(parent).await?;
        }
        Ok(())
    }

    /// A local folder with the files of the folder at `key`, for code that reads files
    /// (Candle, hashing). A directory store answers with the folder itself (no copy; folders
    /// written before manifests existed are accepted there); a bucket's folder is downloaded
    /// once into the cache (a folder is never rewritten once complete, except by
    /// [`Artifacts::put_folder`] on the node that wrote it, so a cached copy whose manifest
    /// still matches the store's is current).
    pub async fn local_folder(&self, key: &str) -> Result<PathBuf, ArtifactError> {
        self.key(key)?;
        match &self.kind {
            Kind::Directory(root) => {
                let dir = root.join(key);
                if !dir.is_dir() {
                    return Err(ArtifactError::Incomplete { location: self.location.clone(), key: key.to_owned() });
                }
                Ok(dir)
            }
            Kind::Bucket { cache } => {
                let dest = cache.join(key);
                let manifest = self.manifest(key).await?;
                let cached: Option<Manifest> =
                    std::fs::read(dest.join(MANIFEST)).ok().and_then(|b| serde_json::from_slice(&b).ok());
                if cached.as_ref() != Some(&manifest) {
                    if let Some(parent) = dest.parent() {
                        tokio::fs::create_dir_all(parent).await.map_err(io(parent))?;
                    }
                    self.download(key, &manifest, &dest).await?;
                }
                Ok(dest)
            }
        }
    }

    /// The files of the folder at `key` (the manifest's list; in a directory store, a
    /// folder from before manifests lists its files), with their sizes.
    pub async fn files(&self, key: &str) -> Result<Vec<(String, u64)>, ArtifactError> {
        match self.manifest(key).await {
            Ok(m) => Ok(m.files.into_iter().map(|f| (f.name, f.bytes)).collect()),
            Err(e) if e.is_missing() && self.is_directory() => {
                let dir = self.local_folder(key).await?;
                let mut out = Vec::new();
                for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
                    let e = e.map_err(io(&dir))?;
                    let meta = e.metadata().map_err(io(&dir))?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    if meta.is_file() && name != MANIFEST {
                        out.push((name, meta.len()));
                    }
                }
                out.sort();
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    /// A file of a folder as a stream of chunks, for a download that never holds it whole.
    pub async fn read(
        &self,
        key: &str,
        name: &str,
    ) -> Result<futures_util::stream::BoxStream<'static, Result<Bytes, ArtifactError>>, ArtifactError> {
        let full = format!("{key}/{name}");
        let path = self.key(&full)?;
        let location = self.location.clone();
        let stream = self.inner.get(&path).await.map_err(self.store_err(&full))?.into_stream();
        Ok(stream
            .map(move |c| {
                c.map_err(|source| ArtifactError::Store { location: location.clone(), key: full.clone(), source })
            })
            .boxed())
    }

    /// Deletes the folder at `key`, manifest first (so it stops counting as complete before
    /// any file goes), then every object under it. Missing is fine.
    pub async fn delete_folder(&self, key: &str) -> Result<(), ArtifactError> {
        let folder = self.key(key)?;
        match self.inner.delete(&folder.clone().join(MANIFEST)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.store_err(key)(e)),
        }
        let mut listed = self.inner.list(Some(&folder));
        let mut paths = Vec::new();
        while let Some(meta) = listed.next().await {
            match meta {
                Ok(m) => paths.push(m.location),
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(self.store_err(key)(e)),
            }
        }
        for p in paths {
            match self.inner.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_err(key)(e)),
            }
        }
        if let Kind::Directory(root) = &self.kind {
            // object_store deletes files; the emptied folders are ours to remove.
            let _ = std::fs::remove_dir_all(root.join(key));
        }
        Ok(())
    }
}

/// The first line of the file an environment variable names (a mounted secret).
/// Flushes a file, or a directory's entries, to the disk.
async fn fsync(path: &Path) -> Result<(), ArtifactError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(&owned).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| ArtifactError::Io { path: path.to_owned(), source: std::io::Error::other(e) })?
        .map_err(io(path))
}

fn secret_file(var: &str) -> Result<Option<String>, ArtifactError> {
    let Some(path) = std::env::var_os(var) else { return Ok(None) };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ArtifactError::Config(format!("cannot read {var} ({}): {e}", Path::new(&path).display())))?;
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    if line.is_empty() {
        return Err(ArtifactError::Config(format!("{var} names an empty file")));
    }
    Ok(Some(line))
}

/// Where a run's artefacts live in the store.
pub fn run_key(run_id: i64, what: &str) -> String {
    format!("runs/{run_id}/{what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn folder(dir: &Path, files: &[(&str, &[u8])]) {
        std::fs::create_dir_all(dir).unwrap();
        for (n, b) in files {
            std::fs::write(dir.join(n), b).unwrap();
        }
    }

    #[test]
    fn a_folder_counts_only_once_its_manifest_is_written_and_fetches_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Artifacts::open(Some(tmp.path().join("store").to_str().unwrap()), tmp.path()).unwrap();
        rt().block_on(async {
            let src = tmp.path().join("src");
            folder(&src, &[("a.json", b"{}"), ("w.safetensors", &[7u8; 3000])]);
            assert!(!store.has_folder("runs/1/x").await.unwrap());
            // A writer that died after its files but before the manifest: not a folder.
            std::fs::create_dir_all(tmp.path().join("store/runs/1/checkpoints/checkpoint-000002")).unwrap();
            std::fs::write(tmp.path().join("store/runs/1/checkpoints/checkpoint-000002/a.json"), b"{}").unwrap();
            let m = store.put_folder("runs/1/checkpoints/checkpoint-000004", &src, "me").await.unwrap();
            assert_eq!(m.files.len(), 2);
            assert_eq!(
                store.folders("runs/1/checkpoints").await.unwrap(),
                vec![("checkpoint-000002".to_string(), false), ("checkpoint-000004".to_string(), true)]
            );
            assert_eq!(
                store.folder_owner("runs/1/checkpoints/checkpoint-000004").await.unwrap().as_deref(),
                Some("me")
            );

            let dest = tmp.path().join("fetched");
            store.fetch_folder("runs/1/checkpoints/checkpoint-000004", &dest).await.unwrap();
            assert_eq!(std::fs::read(dest.join("w.safetensors")).unwrap(), vec![7u8; 3000]);

            // A file changed under the manifest is refused, and the old copy stays whole.
            std::fs::write(tmp.path().join("store/runs/1/checkpoints/checkpoint-000004/w.safetensors"), [8u8; 3000])
                .unwrap();
            let err = store.fetch_folder("runs/1/checkpoints/checkpoint-000004", &dest).await.unwrap_err();
            assert!(err.to_string().contains("does not match its manifest"), "{err}");
            assert_eq!(std::fs::read(dest.join("w.safetensors")).unwrap(), vec![7u8; 3000]);

            store.delete_folder("runs/1/checkpoints").await.unwrap();
            assert!(store.folders("runs/1/checkpoints").await.unwrap().is_empty());
            assert!(!tmp.path().join("store/runs/1/checkpoints/checkpoint-000004").exists());
            // Keys cannot leave the store.
            assert!(store.has_folder("runs/../../etc").await.is_err());
        });
    }

    #[test]
    fn locations_are_checked_and_described_without_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Artifacts::open(None, tmp.path()).unwrap();
        assert!(d.is_directory());
        let err = Artifacts::open(Some("gs://bucket"), tmp.path()).unwrap_err().to_string();
        assert!(err.contains("only a directory or s3://"), "{err}");
        let err = Artifacts::open(Some("s3://key:secret@bucket/x"), tmp.path()).unwrap_err().to_string();
        assert!(err.contains("expected s3://BUCKET") && !err.contains("secret"), "{err}");
    }
}
