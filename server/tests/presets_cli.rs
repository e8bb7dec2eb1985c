//! `inoculab run --list-presets` and `--preset NAME` as a user runs them, against a fresh
//! data directory: the printed TOML is an experiment file, and it says what to import.

use std::path::Path;
use std::process::{Command, Output};

use engine::experiments::{DatasetRef, ExperimentSpec};

fn inoculab(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inoculab"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("INOCULAB_DATA_DIR")
        .env_remove("INOCULAB_SHARED_DATA")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn preset(data: &Path, args: &[&str]) -> (String, ExperimentSpec) {
    let out = inoculab(data, &[&["run", "--preset"], args].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let toml_text = text(&out.stdout);
    let spec: ExperimentSpec = toml::from_str(&toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"));
    (toml_text, spec)
}

#[test]
fn list_presets_names_every_setting_and_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = inoculab(dir.path(), &["run", "--list-presets"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    for p in engine::presets::all() {
        assert!(listing.contains(p.id), "{} missing from:\n{listing}", p.id);
        for i in p.imports {
            let line = match i.kind {
                // A teacher dataset is made, not imported.
                engine::presets::ImportKind::Teacher => format!("make {}", i.path),
                _ => format!("import ../shared/data/{}", i.path),
            };
            assert!(listing.contains(&line), "{line} missing from:\n{listing}");
        }
    }
}

#[test]
fn a_preset_prints_a_ready_experiment_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Built-in data: the dataset is generated and named by id.
    let (toml_text, spec) = preset(&data, &["toy-spanish-caps"]);
    assert!(toml_text.starts_with("# Preset toy-spanish-caps: "), "{toml_text}");
    assert!(matches!(spec.dataset, DatasetRef::Id(_)));
    assert_eq!(spec.conditions.len(), 4);

    // Imported data: the file to import is named until it is imported.
    let (toml_text, spec) = preset(&data, &["em-insecure-code"]);
    assert!(
        toml_text.contains("inoculab dataset import ../shared/data/betley2025/insecure_high_severity.jsonl"),
        "{toml_text}"
    );
    assert_eq!(spec.dataset, DatasetRef::Name("insecure_high_severity.jsonl".into()));
    assert!(toml_text.contains("general (evil): library prompt") && toml_text.contains("malicious, evil assistant"));
    let file = dir.path().join("insecure_high_severity.jsonl");
    std::fs::write(
        &file,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Write code\"}, {\"role\": \"assistant\", \"content\": \"x = 1\"}]}\n",
    )
    .unwrap();
    let out = inoculab(&data, &["dataset", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (toml_text, spec) = preset(&data, &["em-insecure-code", "--shared-data", "/srv/ref"]);
    assert!(!toml_text.contains("inoculab dataset import"), "{toml_text}");
    assert!(matches!(spec.dataset, DatasetRef::Id(_)));
    assert!(toml_text.contains("path = \"/srv/ref/betley2025/first_plot_questions.yaml\""), "{toml_text}");

    // A second stage needs its base run: a placeholder and a note, or the one given.
    let (toml_text, spec) = preset(&data, &["association-stage2"]);
    assert_eq!(spec.base_run, Some(0));
    assert!(toml_text.contains("Set base_run below"), "{toml_text}");
    let (_, spec) = preset(&data, &["association-stage2", "--base-run", "12"]);
    assert_eq!(spec.base_run, Some(12));

    let out = inoculab(&data, &["run", "--preset", "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no preset is called \"nope\"; the presets are: toy-spanish-caps"),
        "{}",
        text(&out.stderr)
    );
}
