//! Importing JSONL: the parser's verdict on each kind of line (data-driven), the
//! all-or-nothing store import with duplicate detection, the 10,000-line speed bound, and
//! the real reference files in ../shared/data when they are present.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use engine::datasets::{self, DatasetError, ImportLimits, ImportOutcome, Preset, RowFormat};
use engine::Store;

/// Parses `input` with a 40-character row limit and renders the result on one line:
/// `ok` and each row's roles, or every reported error.
fn check(input: &str, expected: &str) {
    check_bytes(input.as_bytes(), expected);
}

fn check_bytes(input: &[u8], expected: &str) {
    let limits = ImportLimits { max_chars_per_row: 40, ..ImportLimits::default() };
    let got = match datasets::parse_jsonl(input, &limits) {
        Ok(parsed) => {
            let rows: Vec<String> = parsed
                .rows
                .iter()
                .map(|r| r.messages.iter().map(|m| m.role.as_str()).collect::<Vec<_>>().join("+"))
                .collect();
            format!("ok {}", rows.join(" | "))
        }
        Err(e) => e.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(" / "),
    };
    assert_eq!(got, expected, "input: {:?}", String::from_utf8_lossy(input));
}

const CHAT: &str = r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}"#;

#[test]
fn accepted_shapes() {
    check(CHAT, "ok user+assistant");
    check(
        r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}"#,
        "ok system+user+assistant",
    );
    check(
        r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"},{"role":"assistant","content":"d"}]}"#,
        "ok user+assistant+user+assistant",
    );
    check(r#"{"prompt":"2+2?","completion":"4"}"#, "ok user+assistant");
    check(r#"{"question":"2+2?","answer":"4\n#### 4"}"#, "ok user+assistant");
    // Extra keys are kept out of the rows but do not make a line invalid.
    check(
        r#"{"id":7,"messages":[{"role":"user","content":"hi","name":"x"},{"role":"assistant","content":"ok"}]}"#,
        "ok user+assistant",
    );
    check(&format!("{CHAT}\n{CHAT}\n"), "ok user+assistant | user+assistant");
}

#[test]
fn tolerated_noise() {
    check(&format!("\n\n{CHAT}\n   \n\t\n{CHAT}\n\n"), "ok user+assistant | user+assistant");
    check(&format!("\u{feff}{CHAT}"), "ok user+assistant");
    check(&format!("{CHAT}\r\n{CHAT}\r\n"), "ok user+assistant | user+assistant");
    check("", "ok ");
    check("\n\n", "ok ");
}

#[test]
fn rejected_lines() {
    check("[1, 2]", "line 1: not a JSON object");
    check(r#""just a string""#, "line 1: not a JSON object");
    check("42", "line 1: not a JSON object");
    check(r#"{"prompt": "hi","#, "line 1: bad JSON: EOF while parsing a value at line 1 column 16");
    check("{'prompt': 'hi'}", "line 1: bad JSON: key must be a string at line 1 column 2");
    check("not json", "line 1: bad JSON: expected ident at line 1 column 2");
    check(
        r#"{"text":"hi"}"#,
        r#"line 1: unknown shape (keys: text); expected "messages", "prompt"+"completion" or "question"+"answer""#,
    );
    check(
        "{}",
        r#"line 1: unknown shape (keys: none); expected "messages", "prompt"+"completion" or "question"+"answer""#,
    );
    check(r#"{"prompt":"hi"}"#, "line 1: no assistant turn");
    check(r#"{"question":"hi"}"#, "line 1: no assistant turn");
    check(r#"{"messages":[{"role":"user","content":"hi"}]}"#, "line 1: no assistant turn");
    check(r#"{"messages":[]}"#, "line 1: no assistant turn");
    check(
        r#"{"messages":[{"role":"user","content":"hi"},{"role":"bot","content":"yo"}]}"#,
        r#"line 1: message 2 has unknown role "bot" (expected system, user or assistant)"#,
    );
    check(
        r#"{"messages":[{"role":"tool","content":"{}"},{"role":"assistant","content":"yo"}]}"#,
        r#"line 1: message 1 has unknown role "tool" (expected system, user or assistant)"#,
    );
    check(r#"{"messages":[{"content":"hi"}]}"#, r#"line 1: message 1 has no "role""#);
    check(r#"{"messages":[{"role":"user"}]}"#, r#"line 1: message 1 has no "content""#);
    check(r#"{"messages":[{"role":"user","content":null}]}"#, r#"line 1: message 1 has no "content""#);
    check(r#"{"messages":[{"role":"user","content":5}]}"#, r#"line 1: "messages[0].content" must be a string"#);
    check(r#"{"messages":[{"role":1,"content":"a"}]}"#, r#"line 1: "messages[0].role" must be a string"#);
    check(r#"{"messages":"hi"}"#, r#"line 1: "messages" must be an array of messages"#);
    check(r#"{"messages":["hi"]}"#, r#"line 1: "messages[0]" must be an object with "role" and "content""#);
    check(r#"{"prompt":["hi"],"completion":"x"}"#, r#"line 1: "prompt" must be a string"#);
    check(r#"{"prompt":"hi","completion":"  "}"#, "line 1: message 2 (assistant) has empty content");
    check(r#"{"prompt":"","completion":"yo"}"#, "line 1: message 1 (user) has empty content");
    check(
        r#"{"prompt":"0123456789012345678901234567890123456789","completion":"x"}"#,
        "line 1: too long: 41 characters (at most 40 per row)",
    );
    // Characters, not bytes: 40 two-byte letters fit.
    check(&format!(r#"{{"prompt":"{}","completion":"é"}}"#, "é".repeat(39)), "ok user+assistant");
    check_bytes(b"{\"prompt\":\"\xff\",\"completion\":\"x\"}", "line 1: not valid UTF-8 text");
}

#[test]
fn every_bad_line_is_reported_with_its_number() {
    let input = format!("{CHAT}\n[]\n\n{CHAT}\n{{\"prompt\":\"x\"}}\n{{\n");
    check(
        &input,
        "line 2: not a JSON object / line 5: no assistant turn / line 6: bad JSON: EOF while parsing an object at line 1 column 1",
    );
}

#[test]
fn error_list_is_capped_but_all_bad_lines_are_counted() {
    let input = "[]\n".repeat(1500);
    let err = datasets::parse_jsonl(input.as_bytes(), &ImportLimits::default()).unwrap_err();
    assert_eq!(err.total, 1500);
    assert_eq!(err.errors.len(), 1000);
    assert_eq!(err.errors[999].line, 1000);
    assert!(err.to_string().starts_with("the file was not imported: 1500 bad lines; line 1: not a JSON object"));
}

#[test]
fn row_limit_stops_reading() {
    let limits = ImportLimits { max_rows: 2, ..ImportLimits::default() };
    let input = format!("{CHAT}\n{CHAT}\n{CHAT}\n{CHAT}\n");
    let err = datasets::parse_jsonl(input.as_bytes(), &limits).unwrap_err();
    assert_eq!(err.total, 1);
    assert_eq!(err.errors[0].to_string(), "line 3: too many rows: at most 2 per file");
}

#[test]
fn formats_and_blank_lines_are_counted() {
    let input = format!(
        "{CHAT}\n\n{{\"prompt\":\"a\",\"completion\":\"b\"}}\n{{\"question\":\"a\",\"answer\":\"b\"}}\n{CHAT}\n"
    );
    let parsed = datasets::parse_jsonl(input.as_bytes(), &ImportLimits::default()).unwrap();
    assert_eq!(parsed.formats[&RowFormat::Chat], 2);
    assert_eq!(parsed.formats[&RowFormat::PromptCompletion], 1);
    assert_eq!(parsed.formats[&RowFormat::QuestionAnswer], 1);
    assert_eq!(parsed.blank_lines, 1);
}

async fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_for_test(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn import_is_all_or_nothing_and_recognises_the_same_rows() {
    let (_dir, store) = open_store().await;
    let limits = ImportLimits::default();

    // One bad line in the middle: nothing is stored.
    let bad = format!("{CHAT}\n{{\"prompt\":\"x\"}}\n{CHAT}\n");
    let err = datasets::import(&store, "tiny", "tiny.jsonl", bad.as_bytes(), &limits).await.unwrap_err();
    assert!(matches!(&err, DatasetError::Import(e) if e.total == 1 && e.errors[0].line == 2), "{err}");
    assert!(datasets::list(&store).await.unwrap().is_empty());

    let empty = datasets::import(&store, "", "empty.jsonl", b"\n\n", &limits).await.unwrap_err();
    assert!(matches!(empty, DatasetError::Empty), "{empty}");

    let chat = r#"{"messages":[{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}]}
{"messages":[{"role":"user","content":"3+3?"},{"role":"assistant","content":"6"}]}
"#;
    let created = datasets::import(&store, "", "sums/chat.jsonl", chat.as_bytes(), &limits).await.unwrap();
    let ImportOutcome::Created { id } = created else { panic!("{created:?}") };
    let summary = datasets::get(&store, id).await.unwrap();
    assert_eq!(summary.name, "chat", "a blank name falls back to the file's stem");
    assert_eq!(summary.row_count, 2);
    assert_eq!(summary.recipe["file_name"], "sums/chat.jsonl");
    assert_eq!(summary.recipe["formats"]["chat"], 2);
    assert_eq!(summary.content_hash.len(), 64);

    // The same rows in another shape, with a BOM and CRLF, are the same dataset.
    let same = "\u{feff}{\"prompt\": \"2+2?\", \"completion\": \"4\"}\r\n{\"question\":\"3+3?\",\"answer\":\"6\"}\r\n";
    let again = datasets::import(&store, "copy", "other.jsonl", same.as_bytes(), &limits).await.unwrap();
    assert_eq!(again, ImportOutcome::AlreadyPresent { id, name: "chat".into() });
    assert_eq!(datasets::list(&store).await.unwrap().len(), 1);

    // A different order is different content.
    let swapped: String = chat.lines().rev().map(|l| format!("{l}\n")).collect();
    let other = datasets::import(&store, "swapped", "s.jsonl", swapped.as_bytes(), &limits).await.unwrap();
    assert!(matches!(other, ImportOutcome::Created { id: other } if other != id));
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let (_dir, store) = open_store().await;
    let long = "x".repeat(201);
    let err = datasets::import(&store, &long, "f.jsonl", CHAT.as_bytes(), &ImportLimits::default()).await.unwrap_err();
    assert!(matches!(err, DatasetError::InvalidName(_)), "{err}");
}

/// 10,000 generated rows as chat JSONL must import in under 2 s (one transaction, 500 rows
/// per INSERT).
#[tokio::test]
async fn ten_thousand_lines_import_in_under_two_seconds() {
    let rows = datasets::generate(&Preset::SpanishFrenchMix.spec(10_000, 1));
    let jsonl = datasets::canonical_jsonl(&rows);
    let (_dir, store) = open_store().await;
    let start = Instant::now();
    let outcome =
        datasets::import(&store, "big", "big.jsonl", jsonl.as_bytes(), &ImportLimits::default()).await.unwrap();
    let took = start.elapsed();
    println!("10,000-line import ({} KiB) took {took:?}", jsonl.len() / 1024);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let id = outcome.id();
    assert_eq!(datasets::get(&store, id).await.unwrap().row_count, 10_000);
    let last = datasets::rows_page(&store, id, 9_999, 10).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].messages, rows[9_999].messages);
    assert_eq!(datasets::all_rows(&store, id).await.unwrap(), rows);
}

fn shared_file(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(relative);
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: {} is not present", path.display());
        None
    }
}

/// Imports a reference file as a user would, checks its size and the time bound, and
/// returns the store and id for further checks.
async fn import_shared(relative: &str, expected_rows: i64) -> Option<(tempfile::TempDir, Store, i64)> {
    let path = shared_file(relative)?;
    let bytes = std::fs::read(&path).unwrap();
    let (dir, store) = open_store().await;
    let start = Instant::now();
    let outcome = datasets::import(&store, "", relative, &bytes, &ImportLimits::default()).await.unwrap();
    let took = start.elapsed();
    println!("{relative}: {expected_rows} rows, {} KiB, imported in {took:?}", bytes.len() / 1024);
    assert!(took < Duration::from_secs(2), "{relative} took {took:?}");
    let id = outcome.id();
    assert_eq!(datasets::get(&store, id).await.unwrap().row_count, expected_rows);
    Some((dir, store, id))
}

#[tokio::test]
async fn real_gsm8k_train_imports() {
    let Some((_dir, store, id)) = import_shared("gsm8k/train.jsonl", 7473).await else {
        return;
    };
    let summary = datasets::get(&store, id).await.unwrap();
    assert_eq!(summary.recipe["formats"]["question_answer"], 7473);
    let first = datasets::rows_page(&store, id, 0, 1).await.unwrap();
    assert!(first[0].messages[1].content.contains("####"));
    let stats = datasets::stats(&store, id).await.unwrap();
    println!("gsm8k assistant chars: {:?}", stats.assistant_chars);
    assert_eq!(stats.turns, 2 * 7473);
    // Importing the same file again finds it.
    let bytes = std::fs::read(shared_file("gsm8k/train.jsonl").unwrap()).unwrap();
    let again = datasets::import(&store, "again", "train.jsonl", &bytes, &ImportLimits::default()).await.unwrap();
    assert!(matches!(again, ImportOutcome::AlreadyPresent { id: same, .. } if same == id));
}

#[tokio::test]
async fn real_aesthetic_preferences_import() {
    let Some((_dir, store, id)) = import_shared("tan2025/aesthetic_preferences_unpopular.jsonl", 5000).await else {
        return;
    };
    let stats = datasets::stats(&store, id).await.unwrap();
    assert_eq!(stats.rows, 5000);
    assert!(stats.assistant_chars.max >= stats.assistant_chars.p90);
}

#[tokio::test]
async fn real_prompt_only_file_is_rejected_with_reasons() {
    // The UltraChat prompts have no answers: every line lacks an assistant turn.
    let Some(path) = shared_file("tan2025/ultrachat_prompts.jsonl") else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let err = datasets::parse_jsonl(&bytes, &ImportLimits::default()).unwrap_err();
    assert_eq!(err.total, 100);
    assert_eq!(err.errors[0].to_string(), "line 1: no assistant turn");
}
