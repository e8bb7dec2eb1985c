//! `inoculab dataset teacher`: a dataset sampled from a teacher model (the
//! subliminal-learning setting), with a progress bar. Ctrl-C cancels; nothing is stored
//! unless every sample was drawn.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use engine::datasets::teacher::{self, Phase, TeacherError, TeacherFilter, TeacherSpec};
use engine::datasets::ImportOutcome;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ModelPaths;
use crate::cli::{FilterArg, TeacherArgs};

pub async fn run(store: &engine::Store, models: &ModelPaths, args: TeacherArgs, host: &ml::Host) -> Result<ExitCode> {
    // The default teacher is the built-in model, registered here as `serve` does.
    if let Err(e) = engine::models::ensure_builtin(store, &models.default_model).await {
        eprintln!("warning: cannot register the default model: {e}");
    }
    let mut spec = TeacherSpec::new(&args.model, args.system_prompt.as_deref(), args.rows, args.seed);
    spec.run_id = args.run;
    spec.filter = match args.filter {
        FilterArg::NumbersOnly => TeacherFilter::numbers_only(),
        FilterArg::None => TeacherFilter::None,
    };
    spec.temperature = args.temperature;
    spec.max_tokens = args.max_tokens;
    spec.batch_size = args.batch_size;

    let bar = ProgressBar::new(args.rows as u64);
    bar.set_style(
        ProgressStyle::with_template("teacher {bar:40} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}")
            .expect("template"),
    );
    bar.set_message("loading the model");
    let shown = bar.clone();
    let on_progress = move |p: teacher::TeacherProgress| {
        shown.set_position(p.drawn as u64);
        match p.phase {
            Phase::Loading => shown.set_message("loading the model"),
            Phase::Sampling => shown.set_message(format!("kept {}", p.kept)),
            Phase::Saving => shown.set_message(format!("kept {}; saving", p.kept)),
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let on_signal = cancel.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::Relaxed);
        }
    });
    let result = teacher::create(store, host, &spec, &args.name, on_progress, cancel).await;
    signal.abort();
    bar.finish_and_clear();
    match result {
        Ok(out) => {
            let kept = format!("kept {} of {} samples ({})", out.kept, out.drawn, spec.filter.label());
            match out.dataset {
                ImportOutcome::Created { id } => println!("{kept}; created dataset {id}"),
                ImportOutcome::AlreadyPresent { id, name } => {
                    println!("{kept}; these rows already exist as dataset {id} ({name})")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (TeacherError::Cancelled | TeacherError::NoneKept { .. })) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
