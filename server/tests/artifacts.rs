//! The artefact store on a real S3-compatible server (moto's, from `scripts/s3-local`):
//! multipart uploads of large files, the manifest that makes a folder complete, checked
//! downloads, the local cache, the streamed adapter zip, deletes, and credentials that
//! never show. The test looks into the bucket with boto3 (`scripts/s3-local ls|get|put`),
//! beside the code under test.
//! Needs `INOCULAB_S3=1` (CI sets it): the script installs moto from PyPI on first use.

mod common;

use std::path::Path;

use engine::artifacts::{Artifacts, MANIFEST};
use futures_util::StreamExt;

const PORT: u16 = 29020;
const BUCKET: &str = "artifacts";
const SECRET: &str = "s3cr3t-never-shown";

/// Every key in the bucket under `prefix`, through boto3 (not the code under test).
fn keys(s3: &common::Service, prefix: &str) -> Vec<String> {
    let listed = s3.call(&["ls", prefix], b"");
    let mut out: Vec<String> = String::from_utf8_lossy(&listed).lines().map(str::to_owned).collect();
    out.sort();
    out
}

fn folder(dir: &Path, files: &[(&str, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (n, b) in files {
        std::fs::write(dir.join(n), b).unwrap();
    }
}

#[test]
fn folders_in_an_s3_bucket_are_whole_checked_streamed_and_deleted() {
    if std::env::var("INOCULAB_S3").ok().as_deref() != Some("1") {
        eprintln!("skipped: set INOCULAB_S3=1 to test the artefact store on an S3-compatible server");
        return;
    }
    let (s3, endpoint) = common::Service::start(
        "scripts/s3-local",
        vec![
            ("INOCULAB_S3_DIR", std::env::temp_dir().join("inoculab-artifacts-test-s3").display().to_string()),
            ("INOCULAB_S3_PORT", PORT.to_string()),
            ("INOCULAB_S3_BUCKET", BUCKET.to_string()),
        ],
    );
    // The one test in this binary: nothing else reads the environment meanwhile.
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
    std::env::remove_var("AWS_ENDPOINT");
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = Artifacts::open(Some(&format!("s3://{BUCKET}/lab")), &tmp.path().join("node")).unwrap();
    assert_eq!(store.describe(), "s3://artifacts/lab");
    assert!(!format!("{store:?}").contains(SECRET), "the store's Debug shows the secret");

    // 40 MiB of weights: three parts of a multipart upload.
    let weights: Vec<u8> = (0..40u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let src = tmp.path().join("adapter");
    folder(&src, &[("adapter_config.json", b"{\"r\": 8}".to_vec()), ("adapter_model.safetensors", weights.clone())]);

    rt.block_on(async {
        // A writer that died before its manifest: files, but not a folder.
        s3.call(&["put", "lab/runs/2/adapter/adapter_config.json"], b"{}");
        assert!(!store.has_folder("runs/2/adapter").await.unwrap());
        let err = store.local_folder("runs/2/adapter").await.unwrap_err();
        assert!(err.is_missing() && err.to_string().contains("not a complete folder"), "{err}");

        let manifest = store.put_folder("runs/1/adapter", &src, "run 1").await.unwrap();
        assert_eq!(manifest.files.len(), 2);
        assert_eq!(
            keys(&s3, "lab/runs/1/"),
            [
                "lab/runs/1/adapter/adapter_config.json".to_string(),
                "lab/runs/1/adapter/adapter_model.safetensors".to_string(),
                format!("lab/runs/1/adapter/{MANIFEST}"),
            ]
        );
        let stored = s3.call(&["get", "lab/runs/1/adapter/adapter_model.safetensors"], b"");
        assert!(stored == weights, "the stored weights differ from the uploaded ones");
        assert_eq!(store.folders("runs/2").await.unwrap(), vec![("adapter".to_string(), false)]);

        // Another node's copy: downloaded once into its cache, checked, then reused.
        let local = store.local_folder("runs/1/adapter").await.unwrap();
        assert!(local.starts_with(tmp.path().join("node/artifact-cache")), "{}", local.display());
        assert!(std::fs::read(local.join("adapter_model.safetensors")).unwrap() == weights);
        let modified = std::fs::metadata(local.join("adapter_model.safetensors")).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(store.local_folder("runs/1/adapter").await.unwrap(), local);
        let again = std::fs::metadata(local.join("adapter_model.safetensors")).unwrap().modified().unwrap();
        assert_eq!(modified, again, "a cached folder was downloaded again");

        // The download streams the stored files into a zip PEFT loads.
        let mut zipped = Vec::new();
        let mut stream =
            Box::pin(engine::export::adapter_zip(&store, "runs/1/adapter", "run-1-adapter").await.unwrap());
        let mut chunks = 0;
        while let Some(chunk) = stream.next().await {
            zipped.extend_from_slice(&chunk.unwrap());
            chunks += 1;
        }
        assert!(chunks > 10, "the zip came in {chunks} chunk(s), not streamed");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zipped)).unwrap();
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name("run-1-adapter/adapter_model.safetensors").unwrap(), &mut unzipped)
            .unwrap();
        assert!(unzipped == weights, "the zipped weights differ");
        assert!(zip.by_name("run-1-adapter/adapter_config.json").is_ok());
        assert!(zip.by_name(&format!("run-1-adapter/{MANIFEST}")).is_err(), "the manifest is ours, not PEFT's");

        // A file changed behind the manifest's back is refused, not used.
        s3.call(&["put", "lab/runs/1/adapter/adapter_model.safetensors"], b"tampered");
        let err = store.fetch_folder("runs/1/adapter", &tmp.path().join("fetched")).await.unwrap_err();
        assert!(err.to_string().contains("does not match its manifest"), "{err}");
        assert!(!tmp.path().join("fetched").exists(), "a refused download left a folder");

        // Deleting a folder removes every object under it.
        store.delete_folder("runs/1").await.unwrap();
        assert!(keys(&s3, "lab/runs/1/").is_empty(), "{:?}", keys(&s3, "lab/runs/1/"));
        assert!(!store.has_folder("runs/1/adapter").await.unwrap());
    });

    // A store the server refuses (no such bucket): the error says where, never the secret.
    let gone = Artifacts::open(Some("s3://no-such-bucket/lab"), &tmp.path().join("node")).unwrap();
    let err = rt.block_on(gone.put_folder("runs/3/adapter", &src, "run 3")).unwrap_err().to_string();
    assert!(err.contains("s3://no-such-bucket/lab") && !err.contains(SECRET), "{err}");
}
