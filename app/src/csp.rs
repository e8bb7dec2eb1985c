//! The Content-Security-Policy of every response (server only).
//!
//! Scripts: this origin's files, WebAssembly compilation (`'wasm-unsafe-eval'`: the
//! bundle is wasm) and, on pages, the inline scripts Leptos writes for hydration and
//! resources, which carry the render's nonce (leptos_axum makes one per response). Styles
//! allow inline `style` attributes (bar widths, colours), which cannot run code. Nothing
//! may frame a page, change its base URL or post a form elsewhere.

/// The policy; `nonce` is the rendered page's, `None` for everything else.
pub fn policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(n) => format!("'self' 'nonce-{n}' 'wasm-unsafe-eval'"),
        None => "'self' 'wasm-unsafe-eval'".to_string(),
    };
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Sets the page's policy (with its nonce) on the response being rendered. Called from
/// the shell, before anything streams.
pub fn set_for_page() {
    use leptos::prelude::use_context;
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    if let Ok(value) = http::HeaderValue::from_str(&policy(Some(&nonce))) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}
