//! `inoculab dataset teacher` as a user runs it, with a tiny random model standing in for
//! the built-in default (`--default-model`), against a fresh data directory.

use std::path::Path;
use std::process::{Command, Output};

fn inoculab(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inoculab"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("INOCULAB_DATA_DIR")
        .env_remove("INOCULAB_DEFAULT_MODEL")
        .env_remove("INOCULAB_SEED")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn teacher_makes_a_dataset_says_how_many_it_kept_and_recognises_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    ml::testing::write_tiny_hf_folder(&model, "llama", 7, false).unwrap();
    let data = dir.path().join("data");
    let args = [
        "--default-model",
        model.to_str().unwrap(),
        "dataset",
        "teacher",
        "--name",
        "owl numbers",
        "--system-prompt",
        "You love owls.",
        "--rows",
        "6",
        "--filter",
        "none",
        "--max-tokens",
        "5",
        "--seed",
        "2",
    ];
    let out = inoculab(&data, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("kept ") && stdout.contains(" of 6 samples (no filter); created dataset 1"), "{stdout}");

    let list = text(&inoculab(&data, &["dataset", "list"]).stdout);
    assert!(list.contains("owl numbers") && list.contains("teacher"), "{list}");

    // The same settings make the same rows.
    let again = inoculab(&data, &args);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("these rows already exist as dataset 1 (owl numbers)"),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn teacher_errors_are_clear_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    ml::testing::write_tiny_hf_folder(&model, "llama", 7, false).unwrap();
    let data = dir.path().join("data");
    let run = |extra: &[&str]| {
        let mut args = vec!["--default-model", model.to_str().unwrap(), "dataset", "teacher", "--max-tokens", "4"];
        args.extend_from_slice(extra);
        inoculab(&data, &args)
    };
    // Random weights never write a clean number list: the filter keeps nothing.
    let out = run(&["--rows", "4"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("kept none of the 4 samples; nothing was stored"), "{}", text(&out.stderr));

    let out = run(&["--rows", "4", "--model", "nobody"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no model is registered as \"nobody\""), "{}", text(&out.stderr));

    let out = run(&["--rows", "0"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("number of samples must be between 1 and"), "{}", text(&out.stderr));

    let out = run(&["--rows", "4", "--run", "9"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("run 9 does not exist"), "{}", text(&out.stderr));

    assert_eq!(text(&inoculab(&data, &["dataset", "list"]).stdout).trim(), "no datasets yet");
}
