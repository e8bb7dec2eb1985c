//! Small pieces every page uses: error and loading boxes, tag chips, the pager.

use leptos::prelude::*;

use crate::error::AppError;

/// Shows an error as a sentence; line-numbered import problems as a table.
#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    let lines = match &error {
        AppError::BadLines { lines, total } => {
            let more = total.saturating_sub(lines.len());
            Some(view! {
                <div class="scroll" tabindex="0"><table class="bad-lines">
                    <thead><tr><th>"line"</th><th>"problem"</th></tr></thead>
                    <tbody>
                        {lines.iter().map(|(n, why)| view! { <tr><td class="num">{*n}</td><td>{why.clone()}</td></tr> }).collect_view()}
                    </tbody>
                </table></div>
                {(more > 0).then(|| view! { <p>{format!("… and {more} more.")}</p> })}
            })
        }
        _ => None,
    };
    view! {
        <div class="error" role="alert">
            <strong>{error.to_string()}</strong>
            {lines}
        </div>
    }
}

#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="muted">"Loading…"</p> }
}

#[component]
pub fn Tags(tags: Vec<String>) -> impl IntoView {
    view! {
        <span class="tags">
            {tags.into_iter().map(|t| {
                let class = format!("tag tag-{}", t);
                view! { <span class=class>{t}</span> }
            }).collect_view()}
        </span>
    }
}

/// Previous / next links for a paged list; `href(offset)` builds each link.
#[component]
pub fn Pager(offset: i64, limit: i64, total: i64, href: impl Fn(i64) -> String + 'static) -> impl IntoView {
    let last = (offset + limit).min(total);
    let prev = (offset > 0).then(|| href((offset - limit).max(0)));
    let next = (last < total).then(|| href(offset + limit));
    view! {
        <nav class="pager">
            {match prev {
                Some(h) => view! { <a href=h rel="prev">"← previous"</a> }.into_any(),
                None => view! { <span class="muted">"← previous"</span> }.into_any(),
            }}
            <span>{if total == 0 { "none".to_string() } else { format!("{}–{} of {}", offset + 1, last, total) }}</span>
            {match next {
                Some(h) => view! { <a href=h rel="next">"next →"</a> }.into_any(),
                None => view! { <span class="muted">"next →"</span> }.into_any(),
            }}
        </nav>
    }
}

/// "2026-11-27T20:41:07.123Z" → "2026-11-27 20:41".
pub use wire::counted;

pub fn short_time(ts: &str) -> String {
    ts.get(..16).map(|s| s.replace('T', " ")).unwrap_or_else(|| ts.to_string())
}

/// Reads the text of the first file chosen in a file input (browser only).
#[cfg(feature = "hydrate")]
pub async fn read_file_text(input: &web_sys::HtmlInputElement) -> Result<Option<(String, String)>, String> {
    let Some(file) = input.files().and_then(|f| f.get(0)) else {
        return Ok(None);
    };
    let name = file.name();
    let text =
        wasm_bindgen_futures::JsFuture::from(file.text()).await.map_err(|e| format!("cannot read {name}: {e:?}"))?;
    Ok(Some((name, text.as_string().unwrap_or_default())))
}

/// The size in bytes of the first file chosen in a file input (browser only).
#[cfg(feature = "hydrate")]
pub fn chosen_file_size(input: &web_sys::HtmlInputElement) -> Option<f64> {
    input.files().and_then(|f| f.get(0)).map(|f| f.size())
}
