//! inoculab's engine: everything that is not the web. The store, the prompt library, the
//! datasets and the ML core live here so that the CLI, the job worker and the web app's
//! server functions share one implementation. This crate never imports axum or leptos.

pub mod charts;
pub mod datasets;
pub mod demo;
pub mod experiments;
pub mod export;
pub mod jobs;
pub mod judges;
pub mod ml;
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

pub use store::{Store, StoreError};
