//! inoculab's research domain: the store, the prompt library, datasets, models, experiments,
//! the job queue and runner, judges, statistics, reports and charts, so that the CLI, the
//! job worker and the web app's server functions share one implementation. It builds on the
//! ML crate (`ml`: models, training, sampling) and never imports axum or leptos.

pub mod accounts;
pub mod charts;
pub mod datasets;
pub mod demo;
pub mod experiments;
pub mod export;
pub mod jobs;
pub mod judges;
pub mod models;
pub mod presets;
pub mod prompts;
pub mod questions;
pub mod report;
pub mod reviews;
pub mod runner;
pub mod samples;
pub mod stats;
pub mod store;
pub mod strength;
pub mod subliminal;
pub mod workers;

/// The store's query error, as the queue's and the sample browser's reads return it; the
/// web layer names it only to convert it (to a logged, generic "internal" error).
pub use sqlx::Error as SqlError;
/// Run artefacts (checkpoints, adapters) in a directory or a bucket: the store's other half.
pub use store::artifacts;
pub use store::{Store, StoreError};
