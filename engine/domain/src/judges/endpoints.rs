//! Judge endpoints the operator configures: named OpenAI-compatible servers, each with its
//! URL, model, timeout and the environment variable that holds its key.
//!
//! Why a table and not form fields: a URL and a variable name chosen by whoever can reach
//! the launch form let a web page send the server's secrets (the value of any variable, as
//! a bearer token) to any address, and read whether a variable exists. The browser and
//! experiment specs name an endpoint; [`Endpoints::apply`] swaps the name for the
//! operator's settings when an experiment is launched, so the stored spec still records
//! which URL and model judged. An experiment file the operator runs from the command line
//! may still give an endpoint inline (`type = "open_ai_compatible"`): the operator already
//! holds the secrets.

use serde::{Deserialize, Serialize};

use super::{BackendSpec, JudgeError, JudgeSpec};

/// Longest endpoint name, and the most endpoints one server takes.
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_ENDPOINTS: usize = 64;
/// A judge request's whole time, in seconds, at most.
pub const MAX_TIMEOUT_SECS: u64 = 600;

/// One configured endpoint (a `[[endpoint]]` table of the `--judge-endpoints` file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// What forms and specs call it: letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Up to and including the API version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key (none: no key is sent).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    60
}

impl Endpoint {
    fn check(&self) -> Result<(), JudgeError> {
        let bad = |m: String| Err(JudgeError::Config(format!("judge endpoint {:?}: {m}", self.name)));
        let name_ok = !self.name.is_empty()
            && self.name.chars().count() <= MAX_NAME_CHARS
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            return bad(format!("a name is 1-{MAX_NAME_CHARS} letters, digits, '-', '_' or '.'"));
        }
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
            return bad("base_url must be an http:// or https:// URL".into());
        }
        if self.model.trim().is_empty() || self.model.len() > 256 {
            return bad("model must be 1-256 characters".into());
        }
        if let Some(var) = &self.api_key_env {
            if var.is_empty() || var.len() > 128 || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return bad("api_key_env must name an environment variable (letters, digits, '_')".into());
            }
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return bad(format!("timeout_secs must lie in 1..={MAX_TIMEOUT_SECS}"));
        }
        Ok(())
    }

    /// The backend a judge spec stores for this endpoint.
    pub fn backend(&self) -> BackendSpec {
        BackendSpec::OpenAiCompatible {
            base_url: self.base_url.trim().trim_end_matches('/').to_string(),
            model: self.model.trim().to_string(),
            api_key_env: self.api_key_env.clone(),
            timeout_secs: self.timeout_secs,
        }
    }

    /// Whether its key variable is set (or it needs none): shown to the operator's users
    /// as "ready", never with the variable's name.
    pub fn ready(&self) -> bool {
        self.api_key_env.as_ref().is_none_or(|v| std::env::var_os(v).is_some_and(|k| !k.is_empty()))
    }
}

/// The endpoints a server was started with (none by default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoints(Vec<Endpoint>);

impl Endpoints {
    /// Checks every endpoint and that names are unique.
    pub fn new(endpoints: Vec<Endpoint>) -> Result<Endpoints, JudgeError> {
        if endpoints.len() > MAX_ENDPOINTS {
            return Err(JudgeError::Config(format!("at most {MAX_ENDPOINTS} judge endpoints")));
        }
        let mut names = std::collections::HashSet::new();
        for e in &endpoints {
            e.check()?;
            if !names.insert(e.name.as_str()) {
                return Err(JudgeError::Config(format!("judge endpoint {:?} is listed twice", e.name)));
            }
        }
        Ok(Endpoints(endpoints))
    }

    pub fn list(&self) -> &[Endpoint] {
        &self.0
    }

    pub fn get(&self, name: &str) -> Option<&Endpoint> {
        self.0.iter().find(|e| e.name == name)
    }

    /// Replaces every judge backend that names an endpoint with that endpoint's settings.
    pub fn apply(&self, judges: &mut [JudgeSpec]) -> Result<(), JudgeError> {
        for judge in judges {
            let backend = match judge {
                JudgeSpec::Betley { backend, .. } | JudgeSpec::LlmRating { backend, .. } => backend,
                _ => continue,
            };
            if let BackendSpec::Endpoint { name } = backend {
                let endpoint = self.get(name).ok_or_else(|| unknown(name))?;
                *backend = endpoint.backend();
            }
        }
        Ok(())
    }
}

/// The error for a name no endpoint has.
pub(crate) fn unknown(name: &str) -> JudgeError {
    let shown: String = name.chars().take(MAX_NAME_CHARS).collect();
    JudgeError::Config(format!(
        "no judge endpoint named {shown:?} is configured on this server (the operator lists them in \
         the file given to --judge-endpoints)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(name: &str) -> Endpoint {
        Endpoint {
            name: name.into(),
            base_url: "http://127.0.0.1:8080/v1/".into(),
            model: "judge".into(),
            api_key_env: Some("INOCULAB_TEST_ENDPOINT_KEY".into()),
            timeout_secs: 30,
        }
    }

    #[test]
    fn names_resolve_to_the_operators_settings() {
        let endpoints = Endpoints::new(vec![endpoint("gpt")]).unwrap();
        let mut judges = vec![
            JudgeSpec::caps(),
            JudgeSpec::LlmRating {
                backend: BackendSpec::Endpoint { name: "gpt".into() },
                label: "x".into(),
                prompt: "{answer}".into(),
                threshold: 50.0,
                task: false,
            },
        ];
        endpoints.apply(&mut judges).unwrap();
        let JudgeSpec::LlmRating { backend, .. } = &judges[1] else { panic!() };
        assert_eq!(
            backend,
            &BackendSpec::OpenAiCompatible {
                base_url: "http://127.0.0.1:8080/v1".into(),
                model: "judge".into(),
                api_key_env: Some("INOCULAB_TEST_ENDPOINT_KEY".into()),
                timeout_secs: 30,
            }
        );
        let mut unknown = vec![JudgeSpec::LlmRating {
            backend: BackendSpec::Endpoint { name: "other".into() },
            label: "x".into(),
            prompt: "{answer}".into(),
            threshold: 50.0,
            task: false,
        }];
        let e = endpoints.apply(&mut unknown).unwrap_err().to_string();
        assert!(e.contains("no judge endpoint named \"other\""), "{e}");
    }

    #[test]
    fn bad_endpoints_are_refused_with_reasons() {
        let cases: Vec<(Endpoint, &str)> = vec![
            (Endpoint { name: "".into(), ..endpoint("a") }, "a name is"),
            (Endpoint { name: "a b".into(), ..endpoint("a") }, "a name is"),
            (Endpoint { base_url: "file:///etc/passwd".into(), ..endpoint("a") }, "base_url"),
            (Endpoint { model: " ".into(), ..endpoint("a") }, "model"),
            (Endpoint { api_key_env: Some("A=B".into()), ..endpoint("a") }, "api_key_env"),
            (Endpoint { timeout_secs: 0, ..endpoint("a") }, "timeout_secs"),
            (Endpoint { timeout_secs: u64::MAX, ..endpoint("a") }, "timeout_secs"),
        ];
        for (e, says) in cases {
            let err = Endpoints::new(vec![e.clone()]).unwrap_err().to_string();
            assert!(err.contains(says), "{e:?}: {err}");
        }
        let twice = Endpoints::new(vec![endpoint("a"), endpoint("a")]).unwrap_err().to_string();
        assert!(twice.contains("listed twice"), "{twice}");
    }

    #[test]
    fn an_unnamed_endpoint_cannot_connect() {
        let e = BackendSpec::Endpoint { name: "gpt".into() }.connect(None).err().unwrap().to_string();
        assert!(e.contains("no judge endpoint named \"gpt\""), "{e}");
    }
}
