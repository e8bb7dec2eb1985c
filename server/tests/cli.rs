//! The `inoculab` binary as a user runs it: dataset import and list, with good and bad
//! files, against a fresh data directory.

use std::path::Path;
use std::process::{Command, Output};

fn inoculab(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inoculab"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("INOCULAB_DATA_DIR")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn import_list_and_recognise_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.jsonl");
    std::fs::write(
        &file,
        "{\"question\": \"What is 2+2?\", \"answer\": \"2+2=4\\n#### 4\"}\n\
         {\"prompt\": \"Say hi\", \"completion\": \"Hi!\"}\n\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = inoculab(
        &data,
        &[
            "dataset",
            "import",
            file.to_str().unwrap(),
            "--name",
            "tiny",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("imported 2 rows"),
        "{}",
        text(&out.stdout)
    );

    let again = inoculab(&data, &["dataset", "import", file.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("already imported"),
        "{}",
        text(&again.stdout)
    );

    let list = inoculab(&data, &["dataset", "list"]);
    assert!(list.status.success());
    let listing = text(&list.stdout);
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(
        listing.contains("tiny") && listing.contains("2 rows"),
        "{listing}"
    );
}

#[test]
fn a_bad_file_exits_non_zero_with_every_bad_line_and_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n\
         not json\n\
         {\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = inoculab(&data, &["dataset", "import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("2 bad line(s); nothing was imported"), "{err}");
    assert!(err.contains("bad.jsonl:2: bad JSON"), "{err}");
    assert!(err.contains("bad.jsonl:3: no assistant turn"), "{err}");
    let list = inoculab(&data, &["dataset", "list"]);
    assert_eq!(text(&list.stdout).trim(), "no datasets yet");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = inoculab(dir.path(), &["dataset", "import", "/no/such/file.jsonl"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot read /no/such/file.jsonl"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn every_flag_has_an_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_inoculab"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    for var in [
        "INOCULAB_DATA_DIR",
        "INOCULAB_HOST",
        "INOCULAB_PORT",
        "INOCULAB_MAX_UPLOAD_MB",
    ] {
        assert!(help.contains(var), "{var} missing from:\n{help}");
    }
}
