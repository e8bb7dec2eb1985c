//! Server functions: thin wrappers that take the state from context, call one engine
//! function and return a DTO. Each runs on the server; the wasm bundle gets a stub that
//! posts to it.

pub mod datasets;
pub mod experiments;
pub mod models;
pub mod prompts;
pub mod results;
pub mod strength;
pub mod system;
pub mod teacher;
