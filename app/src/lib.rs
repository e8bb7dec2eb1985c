//! inoculab's web app: Leptos components, pages and server functions.
//!
//! The same crate compiles twice: with `ssr` into the server (pages render to HTML and
//! server functions run against the engine), and with `hydrate` into the wasm bundle that
//! makes those pages interactive. `engine` is a dependency under `ssr` only, so the bundle
//! never contains Candle or sqlx; everything that crosses the wire is a DTO in `dto`.

#![recursion_limit = "256"]

pub mod api;
pub mod components;
#[cfg(feature = "ssr")]
pub mod csp;
pub mod dto;
pub mod error;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;
use leptos_router::SsrMode;

/// The HTML document around the app; the server renders it for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    csp::set_for_page();
    // A shared report (`/share/TOKEN`) is there to be read and has nothing to click but
    // links: it is sent without the wasm bundle, so a viewer on a slow link gets HTML, CSS
    // and images only (the browser tests count its bytes).
    let interactive = !is_shared_report();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                {interactive.then(|| view! { <HydrationScripts options /> })}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Whether the page being rendered is a shared report (only the server renders the shell).
fn is_shared_report() -> bool {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>().is_some_and(|p| p.uri.path().starts_with("/share/"))
    }
    #[cfg(not(feature = "ssr"))]
    {
        false
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: the mark tells browser tests (and
    // anyone curious) that the page is interactive.
    Effect::new(|| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "");
        }
    });
    view! {
        <Stylesheet id="inoculab" href="/pkg/inoculab.css" />
        <Title formatter=|page: String| if page.is_empty() { "inoculab".to_string() } else { format!("{page} · inoculab") } />
        <Router>
            // The first stop for a keyboard or screen-reader user: past the navigation.
            // `rel=external`: the browser, not the router, follows it (and moves focus).
            <a class="skip-link" href="#main" rel="external">"Skip to content"</a>
            <TopBar />
            <main id="main" tabindex="-1">
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::home::HomePage />
                    <Route path=path!("/prompts") view=pages::prompts::PromptsPage />
                    <Route path=path!("/prompts/:id") view=pages::prompts::PromptPage />
                    <Route path=path!("/designer") view=pages::designer::DesignerPage />
                    <Route path=path!("/datasets") view=pages::datasets::DatasetsPage />
                    <Route path=path!("/datasets/:id") view=pages::datasets::DatasetPage />
                    <Route path=path!("/models") view=pages::models::ModelsPage />
                    <Route path=path!("/experiments") view=pages::experiments::ExperimentsPage />
                    <Route path=path!("/experiments/new") view=pages::experiments::NewExperimentPage />
                    <Route path=path!("/experiments/:id") view=pages::experiments::ExperimentPage />
                    <Route path=path!("/experiments/:id/compare") view=pages::samples::ComparePage />
                    // Rendered whole on the server before sending, so the report reads
                    // (and prints) the same without JavaScript.
                    <Route path=path!("/experiments/:id/report") view=pages::report::ReportPage ssr=SsrMode::Async />
                    <Route path=path!("/queue") view=pages::experiments::QueuePage />
                    <Route path=path!("/sign-in") view=pages::accounts::SignInPage />
                    <Route path=path!("/links") view=pages::accounts::LinksPage />
                    // What a share link opens: the report alone, rendered whole on the server.
                    <Route path=path!("/share/:token") view=pages::report::SharedReportPage ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}

/// The navigation, and who is signed in. A report seen through a share link has neither:
/// its viewer may open nothing else.
#[component]
fn TopBar() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let shared = move || location.pathname.with(|p| p.starts_with("/share/"));
    view! {
        <Show when=move || !shared() fallback=|| view! { <header class="topbar"><span class="brand">"inoculab"</span></header> }>
            <header class="topbar">
                <a class="brand" href="/">"inoculab"</a>
                <nav>
                    <A href="/prompts">"Prompts"</A>
                    <A href="/designer">"Designer"</A>
                    <A href="/datasets">"Datasets"</A>
                    <A href="/models">"Models"</A>
                    <A href="/experiments">"Experiments"</A>
                    <A href="/queue">"Queue"</A>
                </nav>
                <pages::accounts::SessionBar />
            </header>
        </Show>
    }
}

/// The wasm entry point: attaches the app to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
