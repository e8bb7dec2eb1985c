//! One module per page (or page family).

pub mod accounts;
pub mod datasets;
pub mod designer;
pub mod experiments;
pub mod home;
pub mod models;
pub mod prompts;
pub mod report;
pub mod samples;

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <h1>"Not found"</h1>
        <p>"There is no page here. " <a href="/">"Go home"</a> "."</p>
    }
}
