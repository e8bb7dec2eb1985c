//! The model registry on a real SQLite store: what registering a Hugging Face folder
//! records (checked against numbers computed here independently), the allowed-roots rule
//! against `..` and symlinks, duplicates, incomplete folders, removal rules and the
//! built-in default (the real GGUF when INOCULAB_REAL_MODEL=1).

use std::path::{Path, PathBuf};

use engine::models::{self, ModelError, ModelKind};
use engine::Store;
use sha2::{Digest, Sha256};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    /// The one allowed model root.
    root: PathBuf,
    /// A folder beside the root, not allowed.
    elsewhere: PathBuf,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_for_test(&dir.path().join("data")).await.unwrap();
    let root = dir.path().join("models");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    Fixture { store, root: root.canonicalize().unwrap(), elsewhere: elsewhere.canonicalize().unwrap(), _dir: dir }
}

impl Fixture {
    fn roots(&self) -> Vec<PathBuf> {
        vec![self.root.clone()]
    }

    async fn register(&self, name: &str, path: &Path) -> Result<models::ModelInfo, ModelError> {
        models::register(&self.store, name, path, &self.roots()).await
    }
}

fn tiny_folder(dir: &Path, sharded: bool) -> PathBuf {
    ml::testing::write_tiny_hf_folder(dir, "llama", 7, sharded).unwrap();
    dir.to_path_buf()
}

/// Elements of every tensor in the folder's safetensors files, counted by loading them
/// with Candle (not by reading headers, as the registry does).
fn loaded_params(dir: &Path) -> u64 {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            for t in candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap().values() {
                n += t.elem_count() as u64;
            }
        }
    }
    n
}

/// The folder hash as documented on `models::inspect`: for each file, sorted by name, its
/// name, a 0 byte, its length (u64 little-endian) and its bytes. The tiny folder is flat.
fn folder_hash(dir: &Path) -> (u64, String) {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut hasher = Sha256::new();
    let mut size = 0;
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
        size += bytes.len() as u64;
    }
    (size, hex::encode(hasher.finalize()))
}

#[tokio::test]
async fn registering_a_tiny_folder_records_what_it_is() {
    let f = fixture().await;
    for sharded in [false, true] {
        let dir = tiny_folder(&f.root.join(format!("tiny-{sharded}")), sharded);
        let name = format!("tiny sharded={sharded}");
        let info = f.register(&name, &dir).await.unwrap();
        let (size, hash) = folder_hash(&dir);
        assert_eq!(info.name, name);
        assert_eq!(info.kind, ModelKind::Hf);
        assert_eq!(info.path, dir.to_str().unwrap());
        // The tiny config has no `architectures` list, so its model_type names it.
        assert_eq!(info.architecture, "llama");
        assert_eq!(info.n_params, loaded_params(&dir));
        assert_eq!(info.size_bytes, size);
        assert_eq!(info.sha256, hash);
        assert!(info.ready && !info.builtin);
        assert_eq!(models::get(&f.store, info.id).await.unwrap(), Some(info.clone()));
        assert_eq!(models::by_name(&f.store, &name).await.unwrap(), Some(info));
    }
    // Both layouts hold the same weights, so the same number of parameters.
    let list = models::list(&f.store).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].n_params, list[1].n_params);
    assert_ne!(list[0].sha256, list[1].sha256);
}

#[tokio::test]
async fn architectures_in_config_name_the_model() {
    let f = fixture().await;
    let dir = tiny_folder(&f.root.join("qwen-like"), false);
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    assert_eq!(f.register("named", &dir).await.unwrap().architecture, "LlamaForCausalLM");
}

#[tokio::test]
async fn paths_outside_the_roots_are_refused_however_they_are_spelt() {
    let f = fixture().await;
    let outside = tiny_folder(&f.elsewhere.join("tiny"), false);
    std::os::unix::fs::symlink(&outside, f.root.join("link")).unwrap();
    let dotdot = f.root.join("..").join("elsewhere").join("tiny");
    for path in [outside.clone(), dotdot, f.root.join("link"), PathBuf::from("/etc/passwd"), PathBuf::from("/nope")] {
        let err = f.register("escape", &path).await.unwrap_err();
        assert!(matches!(err, ModelError::OutsideRoots { .. }), "{}: {err}", path.display());
        let message = err.to_string();
        assert!(message.contains("is outside the allowed model roots"), "{message}");
        assert!(message.contains(f.root.to_str().unwrap()), "{message}");
        assert!(message.contains("--model-root"), "{message}");
    }
    let err = f.register("escape", &f.root.join("link")).await.unwrap_err().to_string();
    assert!(err.contains(&format!("which resolves to {}", outside.display())), "{err}");
    assert!(models::list(&f.store).await.unwrap().is_empty(), "nothing was registered");

    // A missing path under a root is reported as missing; no roots at all refuses anything.
    let err = f.register("missing", &f.root.join("absent")).await.unwrap_err().to_string();
    assert!(err.contains("no such file or folder"), "{err}");
    let err = models::register(&f.store, "x", &outside, &[]).await.unwrap_err().to_string();
    assert!(err.contains("none are configured"), "{err}");
}

#[tokio::test]
async fn a_root_given_through_a_symlink_still_allows_its_folders() {
    let f = fixture().await;
    let dir = tiny_folder(&f.root.join("tiny"), false);
    let link_root = f.elsewhere.join("root-link");
    std::os::unix::fs::symlink(&f.root, &link_root).unwrap();
    let info = models::register(&f.store, "via link", &link_root.join("tiny"), &[link_root]).await.unwrap();
    assert_eq!(info.path, dir.to_str().unwrap(), "the stored path is canonical");
}

#[tokio::test]
async fn duplicates_are_refused_by_path_and_by_name() {
    let f = fixture().await;
    let a = tiny_folder(&f.root.join("a"), false);
    let b = tiny_folder(&f.root.join("b"), true);
    f.register("first", &a).await.unwrap();
    // The same folder spelt differently is the same path once canonical.
    let err = f.register("second", &f.root.join("b/../a/.")).await.unwrap_err();
    assert!(matches!(err, ModelError::Duplicate(_)), "{err}");
    assert!(err.to_string().contains("is already registered as “first”"), "{err}");
    let err = f.register(" first ", &b).await.unwrap_err();
    assert!(matches!(err, ModelError::Duplicate(_)), "{err}");
    assert!(err.to_string().contains("a model named “first” is already registered"), "{err}");
    assert!(matches!(f.register("  ", &b).await.unwrap_err(), ModelError::InvalidName(_)));
    assert_eq!(models::list(&f.store).await.unwrap().len(), 1);
}

/// Breaks a fresh tiny folder with `damage` and checks the refusal names the problem.
async fn check_incomplete(f: &Fixture, case: &str, sharded: bool, damage: impl FnOnce(&Path), expect: &str) {
    let dir = tiny_folder(&f.root.join(case), sharded);
    damage(&dir);
    let err = f.register(case, &dir).await.unwrap_err();
    assert!(matches!(err, ModelError::Invalid { .. }), "{case}: {err}");
    assert!(err.to_string().contains(expect), "{case}: {err}");
}

#[tokio::test]
async fn incomplete_folders_are_refused_naming_what_is_missing() {
    let f = fixture().await;
    let rm = |name: &'static str| move |d: &Path| std::fs::remove_file(d.join(name)).unwrap();
    check_incomplete(&f, "no-config", false, rm("config.json"), "config.json is missing").await;
    check_incomplete(&f, "no-tokenizer", false, rm("tokenizer.json"), "tokenizer.json is missing").await;
    check_incomplete(&f, "no-weights", false, rm("model.safetensors"), "model.safetensors").await;
    check_incomplete(
        &f,
        "no-shard",
        true,
        rm("model-00002-of-00002.safetensors"),
        "model-00002-of-00002.safetensors is missing",
    )
    .await;
    let truncate = |d: &Path| {
        let p = d.join("model.safetensors");
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 10).unwrap();
    };
    check_incomplete(&f, "truncated", false, truncate, "truncated").await;
    let gpt2 = |d: &Path| std::fs::write(d.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    check_incomplete(&f, "gpt2", false, gpt2, "model_type \"gpt2\"").await;
    let escaping_index = |d: &Path| {
        std::fs::write(d.join("model.safetensors.index.json"), r#"{"weight_map": {"x": "../../etc/passwd"}}"#).unwrap()
    };
    check_incomplete(&f, "escaping-index", true, escaping_index, "is not a file name in the folder").await;
    // A file that is not GGUF is refused as such.
    let junk = f.root.join("junk.gguf");
    std::fs::write(&junk, b"not a model").unwrap();
    let err = f.register("junk", &junk).await.unwrap_err().to_string();
    assert!(err.contains("not a GGUF file"), "{err}");
    assert!(models::list(&f.store).await.unwrap().is_empty());
}

#[tokio::test]
async fn remove_deletes_the_row_only_and_refuses_models_in_use() {
    let f = fixture().await;
    let dir = tiny_folder(&f.root.join("tiny"), false);
    let info = f.register("tiny", &dir).await.unwrap();
    let (dataset_id,): (i64,) = sqlx::query_as(
        "INSERT INTO datasets (name, source, recipe, content_hash, row_count) VALUES ('d', 'import', '{}', 'h', 0)
         RETURNING id",
    )
    .fetch_one(f.store.pool())
    .await
    .unwrap();
    let (experiment_id,): (i64,) = sqlx::query_as(
        "INSERT INTO experiments (name, spec, spec_hash, model_id, dataset_id) VALUES ('e', '{}', 's', $1, $2)
         RETURNING id",
    )
    .bind(info.id)
    .bind(dataset_id)
    .fetch_one(f.store.pool())
    .await
    .unwrap();
    let err = models::remove(&f.store, info.id).await.unwrap_err();
    assert!(matches!(err, ModelError::InUse { count: 1, .. }), "{err}");
    assert!(err.to_string().contains("in use by 1 experiment;"), "{err}");

    sqlx::query("DELETE FROM experiments WHERE id = $1").bind(experiment_id).execute(f.store.pool()).await.unwrap();
    models::remove(&f.store, info.id).await.unwrap();
    assert_eq!(models::get(&f.store, info.id).await.unwrap(), None);
    assert!(dir.join("model.safetensors").exists(), "the files stay");
    assert!(matches!(models::remove(&f.store, info.id).await.unwrap_err(), ModelError::NotFound(_)));
}

#[tokio::test]
async fn the_builtin_is_registered_once_cannot_be_removed_and_shows_when_missing() {
    let f = fixture().await;
    // Any loadable model can stand in for the default file here; the real GGUF is below.
    let dir = tiny_folder(&f.elsewhere.join("default"), false);
    assert_eq!(models::ensure_builtin(&f.store, &f.elsewhere.join("absent.gguf")).await.unwrap(), None);
    let first = models::ensure_builtin(&f.store, &dir).await.unwrap().unwrap();
    assert!(first.builtin && first.ready);
    assert_eq!(first.name, models::BUILTIN_NAME);
    let again = models::ensure_builtin(&f.store, &dir).await.unwrap().unwrap();
    assert_eq!(again, first);
    assert_eq!(models::list(&f.store).await.unwrap().len(), 1);
    let err = models::remove(&f.store, first.id).await.unwrap_err();
    assert!(matches!(err, ModelError::Builtin { .. }), "{err}");

    // The file goes away: no new row, and the old one lists as not ready.
    std::fs::rename(&dir, f.elsewhere.join("moved")).unwrap();
    assert_eq!(models::ensure_builtin(&f.store, &dir).await.unwrap(), None);
    let listed = models::list(&f.store).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].ready);

    // The same bytes at a new place: the row follows them instead of a second row.
    let moved = models::ensure_builtin(&f.store, &f.elsewhere.join("moved")).await.unwrap().unwrap();
    assert_eq!(moved.id, first.id);
    assert!(moved.ready);
    assert_eq!(moved.path, f.elsewhere.join("moved").to_str().unwrap());
}

#[tokio::test]
async fn the_real_default_model_is_registered_as_builtin() {
    let Some(path) = ml::testing::real_model_path("the_real_default_model_is_registered_as_builtin") else {
        return;
    };
    // From scripts/fetch-model, which checks the downloaded file against it.
    const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
    let f = fixture().await;
    let info = models::ensure_builtin(&f.store, &path).await.unwrap().expect("the model file exists");
    assert_eq!(info.kind, ModelKind::Gguf);
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.sha256, SHA256);
    assert_eq!(info.size_bytes, std::fs::metadata(&path).unwrap().len());
    assert!((134_000_000..136_000_000).contains(&info.n_params), "{} parameters", info.n_params);
    assert!(info.builtin && info.ready);
    assert_eq!(models::ensure_builtin(&f.store, &path).await.unwrap(), Some(info));
    assert_eq!(models::list(&f.store).await.unwrap().len(), 1);
}
