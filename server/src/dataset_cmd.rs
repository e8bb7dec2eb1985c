//! `inoculab dataset ...`: import, list, generate, and the teacher (in `teacher_cmd`).

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{DatasetCommand, ModelPaths};

pub async fn run(
    data_dir: &std::path::Path,
    places: &crate::cli::Places,
    models: &ModelPaths,
    cmd: DatasetCommand,
    host: &ml::Host,
) -> anyhow::Result<ExitCode> {
    use engine::datasets;
    let store = places.connect(data_dir).await?;
    match cmd {
        DatasetCommand::Import { file, name, max_row_chars } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = name.unwrap_or_else(|| file_name.clone());
            let limits = datasets::ImportLimits { max_chars_per_row: max_row_chars, ..Default::default() };
            match datasets::import(&store, &name, &file_name, &bytes, &limits).await {
                Ok(datasets::ImportOutcome::Created { id }) => {
                    let rows = datasets::get(&store, id).await?.row_count;
                    println!("imported {rows} rows from {} as dataset {id} ({name})", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Ok(datasets::ImportOutcome::AlreadyPresent { id, name }) => {
                    println!("{} is already imported: dataset {id} ({name}) has the same rows", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(datasets::DatasetError::Import(report)) => {
                    eprintln!(
                        "{}: {}; nothing was imported",
                        file.display(),
                        wire::counted(report.total as u64, "bad line", "bad lines")
                    );
                    for e in &report.errors {
                        eprintln!("{}:{}: {}", file.display(), e.line, e.problem);
                    }
                    if report.total > report.errors.len() {
                        eprintln!("… and {} more", report.total - report.errors.len());
                    }
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        DatasetCommand::Generate { preset, rows, seed, name } => {
            let preset: datasets::generate::Preset = serde_json::from_value(serde_json::Value::String(preset.clone()))
                .map_err(|_| {
                    anyhow::anyhow!("unknown preset {preset:?}: spanish_all_caps, spanish_french_mix or english")
                })?;
            let spec = preset.spec(rows, seed);
            match datasets::generate::create_generated(&store, &spec, &name).await? {
                datasets::ImportOutcome::Created { id } => println!("generated dataset {id} ({rows} rows)"),
                datasets::ImportOutcome::AlreadyPresent { id, name } => {
                    println!("these rows already exist as dataset {id} ({name})")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DatasetCommand::Teacher(args) => crate::teacher_cmd::run(&store, models, args, host).await,
        DatasetCommand::List => {
            let list = datasets::list(&store).await?;
            if list.is_empty() {
                println!("no datasets yet");
            }
            for d in list {
                println!(
                    "{:>5}  {:<40}  {:>7} rows  {:<9}  {}",
                    d.id,
                    d.name,
                    d.row_count,
                    d.source.as_str(),
                    &d.content_hash[..12]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
