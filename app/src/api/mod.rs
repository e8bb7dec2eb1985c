//! Server functions: thin wrappers that take the state from context, call one engine
//! function and return a DTO. Each runs on the server; the wasm bundle gets a stub that
//! posts to it.

pub mod accounts;
pub mod datasets;
pub mod experiments;
pub mod models;
pub mod prompts;
pub mod results;
pub mod strength;
pub mod system;
pub mod teacher;

/// The server functions that read only: the only ones a `viewer` may call (every other
/// one, present or future, is refused to viewers by `server::access`).
#[cfg(feature = "ssr")]
pub fn read_only_paths() -> Vec<&'static str> {
    use server_fn::ServerFn;
    vec![
        accounts::GetSession::PATH,
        accounts::SignOut::PATH,
        datasets::ListDatasets::PATH,
        datasets::GetDataset::PATH,
        datasets::DatasetRows::PATH,
        experiments::ListExperiments::PATH,
        experiments::GetLaunchOptions::PATH,
        experiments::GetExperiment::PATH,
        experiments::ListQueue::PATH,
        experiments::ListWorkers::PATH,
        experiments::ElicitationPrompts::PATH,
        models::ListModels::PATH,
        prompts::ListPrompts::PATH,
        prompts::PromptTags::PATH,
        prompts::GetPrompt::PATH,
        prompts::DiffPromptVersions::PATH,
        results::ListSamples::PATH,
        results::GetReviewSummary::PATH,
        results::ListQuestions::PATH,
        results::GetSideBySide::PATH,
        results::GetReport::PATH,
        strength::GetPredictions::PATH,
        system::GetServerInfo::PATH,
        teacher::GetTeacherChoices::PATH,
        teacher::GetTeacherTask::PATH,
    ]
}

/// The server functions anyone may call, signed in or not: signing in, and the report a
/// share link opens (the token is its argument).
#[cfg(feature = "ssr")]
pub fn public_paths() -> Vec<&'static str> {
    use server_fn::ServerFn;
    vec![accounts::SignIn::PATH, accounts::GetSharedReport::PATH]
}
