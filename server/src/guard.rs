//! What every request passes before it reaches a page or a server function: the Host it
//! names, where a state-changing request comes from and how its body is encoded; and the
//! security headers every response carries.
//!
//! Why each check is here:
//! - **Host**: a page on `attacker.example` whose name is re-pointed at 127.0.0.1 (DNS
//!   rebinding) is same-origin with itself, so the browser lets it read our answers.
//!   Names are refused unless listed (loopback names, `--public-url`'s host,
//!   `--allowed-host`); an IP-literal Host cannot be rebound and is accepted.
//! - **Origin / Sec-Fetch-Site**: server functions take form-encoded POSTs, which any web
//!   page may send cross-site without a CORS preflight. Browsers label such requests, so a
//!   state-changing request labelled cross-site, or with an Origin other than the Host it
//!   was sent to, is refused. Clients that are not browsers (curl, scripts) send neither
//!   header and are let through: they are not acting for a visited page.
//! - **Content-Type**: only the encodings server functions use; `text/plain` or none
//!   (which a cross-site form or `fetch` can send without a preflight) is refused.
//! - **Headers**: a Content-Security-Policy (the page's own with a nonce for Leptos'
//!   inline hydration scripts, set in `app::shell`; a strict one otherwise), `nosniff`,
//!   no framing, and referrers kept to this origin.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Which Host names this server answers to, and its public origin.
#[derive(Clone, Debug)]
pub struct Guard {
    /// Lower-case host names, without ports.
    names: Vec<String>,
    /// `scheme://host[:port]` of `--public-url`: behind a proxy that passes its own
    /// address as Host, the browser's Origin is this, not the Host the server sees.
    public_origin: Option<String>,
}

impl Guard {
    /// Loopback names plus `--public-url`'s host and the `--allowed-host` names.
    pub fn new(public_url: Option<&str>, allowed: &[String]) -> anyhow::Result<Guard> {
        let mut names: Vec<String> = vec!["localhost".into()];
        for e in public_url.iter().copied().chain(allowed.iter().map(String::as_str)) {
            let host = host_of(e).ok_or_else(|| anyhow::anyhow!("{e:?} is not a host name or an http(s) URL"))?;
            names.push(host);
        }
        let public_origin = match public_url.map(str::trim) {
            Some(url) => {
                let (scheme, rest) = url
                    .split_once("://")
                    .filter(|(s, _)| matches!(*s, "http" | "https"))
                    .ok_or_else(|| anyhow::anyhow!("--public-url {url:?} must start with http:// or https://"))?;
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
            }
            None => None,
        };
        Ok(Guard { names, public_origin })
    }

    fn allows_host(&self, host: &str) -> bool {
        let name = strip_port(host).to_ascii_lowercase();
        if name.is_empty() {
            return false;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<std::net::IpAddr>().is_ok()
            || self.names.iter().any(|n| *n == name)
            // RFC 6761: every *.localhost name is loopback.
            || name.ends_with(".localhost")
    }
}

/// `host[:port]` without the port (IPv6 literals keep their brackets).
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_once(']').map_or(authority, |(h, _)| &authority[..h.len() + 1]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { authority })
}

/// The host of `http(s)://host[:port]/...` or of a bare `host[:port]`, lower-cased.
fn host_of(text: &str) -> Option<String> {
    let text = text.trim();
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")).unwrap_or(text);
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let host = strip_port(authority).to_ascii_lowercase();
    let valid = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    valid.then_some(host)
}

/// The request's authority: the Host header (HTTP/1.1) or the URI's (HTTP/2).
fn authority(request: &Request) -> Option<String> {
    match request.headers().get(header::HOST) {
        Some(h) => h.to_str().ok().map(str::to_owned),
        None => request.uri().authority().map(|a| a.as_str().to_owned()),
    }
}

/// The axum middleware (`from_fn_with_state`).
pub async fn check(
    axum::extract::State(guard): axum::extract::State<std::sync::Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(host) = authority(&request).filter(|h| guard.allows_host(h)) else {
        // 421: this server is not the one the name was meant for.
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "this server does not answer to that host name; its operator can add it with --allowed-host or --public-url",
        );
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        if let Err(why) = same_origin(request.headers(), &host, guard.public_origin.as_deref()) {
            return refuse(StatusCode::FORBIDDEN, why);
        }
        if !known_body_type(request.headers()) {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send application/x-www-form-urlencoded or application/json",
            );
        }
    }
    let mut response = next.run(request).await;
    secure_headers(response.headers_mut());
    response
}

/// Refuses requests a browser labels as coming from another site: an Origin must be the
/// address the request was sent to (its Host) or the public URL's.
fn same_origin(headers: &HeaderMap, host: &str, public_origin: Option<&str>) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none`: the user did it (typed or bookmarked), not a page.
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err("cross-site requests are refused");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        let public = public_origin.is_some_and(|p| p.eq_ignore_ascii_case(origin));
        if !public && authority.is_none_or(|a| !a.eq_ignore_ascii_case(host)) {
            return Err("requests from another origin are refused");
        }
    }
    Ok(())
}

fn known_body_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(essence.as_str(), "application/x-www-form-urlencoded" | "application/json")
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response();
    secure_headers(response.headers_mut());
    response
}

/// Headers for every response; a page's own CSP (with its nonce) is kept.
fn secure_headers(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(policy) = HeaderValue::from_str(&app::csp::policy(None)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}
