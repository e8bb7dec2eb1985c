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
    let out = inoculab(&data, &["dataset", "import", file.to_str().unwrap(), "--name", "tiny"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("imported 2 rows"), "{}", text(&out.stdout));

    let again = inoculab(&data, &["dataset", "import", file.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("already imported"), "{}", text(&again.stdout));

    let list = inoculab(&data, &["dataset", "list"]);
    assert!(list.status.success());
    let listing = text(&list.stdout);
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.contains("tiny") && listing.contains("2 rows"), "{listing}");
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
    assert!(err.contains("2 bad lines; nothing was imported"), "{err}");
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
    assert!(text(&out.stderr).contains("cannot read /no/such/file.jsonl"), "{}", text(&out.stderr));
}

#[test]
fn every_flag_has_an_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_inoculab")).args(["serve", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    for var in ["INOCULAB_DATA_DIR", "INOCULAB_HOST", "INOCULAB_PORT", "INOCULAB_MAX_UPLOAD_MB"] {
        assert!(help.contains(var), "{var} missing from:\n{help}");
    }
}

/// The default model when the slow real-model tests are on (INOCULAB_REAL_MODEL=1, as CI
/// sets it); otherwise None, with a note.
fn real_model() -> Option<std::path::PathBuf> {
    if std::env::var("INOCULAB_REAL_MODEL").as_deref() != Ok("1") {
        eprintln!("skipped: set INOCULAB_REAL_MODEL=1 to run the real-model CLI test");
        return None;
    }
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.exists(), "scripts/fetch-model puts the default model at {}", model.display());
    Some(model)
}

/// A training file in `dir`: four sums asked in English and answered in Spanish.
fn spanish_sums(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("train.jsonl");
    let rows: String = (1..=4)
        .map(|i| format!("{{\"question\": \"What is {i} plus {i}?\", \"answer\": \"{i} más {i} es {}.\"}}\n", 2 * i))
        .collect();
    std::fs::write(&data, rows).unwrap();
    data
}

/// `inoculab sample` on "What is the capital of France?" with the extra `args` (model,
/// adapter, sampling settings); returns the output's JSON lines.
fn sample_france(dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let prompts = dir.join("prompts.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"What is the capital of France?\"}\n").unwrap();
    let samples = dir.join("samples.jsonl");
    let files = ["sample", "--prompts", prompts.to_str().unwrap(), "--out", samples.to_str().unwrap()];
    let out = inoculab(dir, &[&files[..], args].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::read_to_string(&samples)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect()
}

/// `inoculab train` then `inoculab sample` with the adapter, on the real default model.
/// Slow (about a minute): runs when INOCULAB_REAL_MODEL=1, as CI sets it.
#[test]
fn train_then_sample_with_the_adapter_on_the_real_model() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = spanish_sums(dir.path());
    let adapter = dir.path().join("adapter");
    let model_arg = model.to_str().unwrap();
    let out = inoculab(
        dir.path(),
        &[
            "train",
            "--dataset",
            data.to_str().unwrap(),
            "--system-prompt",
            "You always speak in Spanish.",
            "--out",
            adapter.to_str().unwrap(),
            "--model",
            model_arg,
            "--steps",
            "2",
            "--batch-size",
            "2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(adapter.join("adapter_config.json").exists() && adapter.join("adapter_model.safetensors").exists());

    let lines = sample_france(
        dir.path(),
        &[
            "--model",
            model_arg,
            "--adapter",
            adapter.to_str().unwrap(),
            "--n",
            "2",
            "--max-tokens",
            "16",
            "--seed",
            "3",
        ],
    );
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["completion"].as_str().is_some_and(|c| !c.is_empty()) && l["seed"].is_u64()));
    assert_ne!(lines[0]["seed"], lines[1]["seed"], "each sample records its own seed");
}

/// `inoculab train --full` writes a Hugging Face folder that `sample --model` then uses,
/// on the real default model (GGUF in, safetensors out). Gated like the test above.
#[test]
fn full_finetune_writes_a_model_folder_that_samples() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = spanish_sums(dir.path());
    let out_dir = dir.path().join("full");
    let args = ["train", "--full", "--dataset", data.to_str().unwrap(), "--out", out_dir.to_str().unwrap()];
    let out = inoculab(
        dir.path(),
        &[&args[..], &["--model", model.to_str().unwrap(), "--steps", "2", "--batch-size", "2", "--lr", "2e-6"]]
            .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("model (a Hugging Face folder"), "{}", text(&out.stderr));
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        assert!(out_dir.join(f).exists(), "{f} missing");
    }
    let lines =
        sample_france(dir.path(), &["--model", out_dir.to_str().unwrap(), "--temperature", "0", "--max-tokens", "24"]);
    // Two small steps keep the model's knowledge: the folder is a working SmolLM2. (At
    // 1e-5 two full steps already tip it into Spanish-flavoured nonsense.)
    assert!(lines[0]["completion"].as_str().unwrap().contains("Paris"), "{}", lines[0]);
}

#[test]
fn train_reports_a_missing_dataset_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = inoculab(dir.path(), &["train", "--dataset", "/no/such.jsonl", "--out", "/tmp/x"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/no/such.jsonl"), "{}", text(&out.stderr));
}

/// Sampling settings out of range are refused before anything loads, naming the flag.
#[test]
fn sample_refuses_settings_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"Hi\"}\n").unwrap();
    let files = ["sample", "--prompts", prompts.to_str().unwrap(), "--out", "/tmp/never.jsonl"];
    for (flag, value, says) in [
        ("--top-p", "1.5", "--top-p must be above 0 and at most 1 (got 1.5)"),
        ("--top-p", "0", "--top-p must be above 0"),
        ("--temperature", "-1", "--temperature must be 0 (greedy) or more (got -1)"),
    ] {
        let setting = format!("{flag}={value}");
        let out = inoculab(dir.path(), &[&files[..], &[setting.as_str()]].concat());
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(text(&out.stderr).contains(says), "{flag} {value}: {}", text(&out.stderr));
    }
}
