//! Terminal injection (issue 14, hole 6): text a model controls must reach
//! the operator's terminal with its control characters escaped.
//!
//! A scripted orchestrator and its worker put escape sequences, newlines,
//! carriage returns, bells, OSC 52 clipboard writes, C1 controls and bidi
//! overrides into every field they can reach: goals, rationales, paths,
//! messages, channels, memory objects, grants, questions, results and
//! rejected tool names. Every text renderer must show them escaped, on the
//! line they belong to, and every `--json` output must keep them exactly.

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

const BAD_TOOL: &str = "ev\u{1b}[2Jil";
const RATIONALE: &str = "Spawning a worker.\u{1b}[1A\u{1b}[2K\nline two\r\u{1b}[31mred";
/// A goal that clears the screen and draws a fake process table.
const CHILD_GOAL: &str = "check the docs\u{1b}[2J\u{1b}[H\nPID PPID IMAGE\n9 - root exited(0)\u{202e}txt.exe";
const CHILD_GRANT: &str = "read fs:docs\u{1b}[2K/**";
/// A question that clears the screen and draws a fake, harmless-looking request.
const QUESTION: &str =
    "\u{1b}[2J\u{1b}[HShip it?\n\nrequest 7 · pid 1 (orchestrator) · today\n  asks: read fs:notes.txt\u{7}";
const DENIED_PATH: &str = "../secret.txt";
/// A path that moves up a line and erases it: the denied read above disappears.
const ERASING_PATH: &str = "../x\u{1b}[1A\u{1b}[2K";
const BODY: &str = "report\u{1b}]52;c;cHduZWQ=\u{7} and \u{9b}2J done";
const CHANNEL: &str = "reports\u{1b}[8m";
const WAIT_CHANNEL: &str = "orders\u{1b}[8m";
/// A file the orchestrator reads: its content is the tool result.
const FILE: &str = "line one\r\n\u{1b}]52;c;ZWNobyBvd25lZA==\u{7}line two\u{7f}\n";
const MEMORY: &str = "notes\u{1b}]0;retitled\u{7}\nsecond\u{2066}line";
const KIND: &str = "text\u{1b}[31m";
const RESULT: &str = "done\r\u{1b}]52;c;cHduZWQ=\u{7}\u{202e}evil";

/// `text` as a TOML basic string, every character outside printable ASCII escaped.
fn toml(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c => out.push_str(&format!("\\U{:08X}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

fn script() -> String {
    format!(
        r#"
[[agent]]
image = "orchestrator"

[[agent.step]]
tool = {bad_tool}
args = {{}}

[[agent.step]]
say = {rationale}
tool = "spawn"
args = {{ image = "worker", goal = {goal}, grants = ["read fs:**", {grant}] }}

[[agent.step]]
tool = "receive"
args = {{}}

[[agent.step]]
tool = "read_file"
args = {{ path = "clip.txt" }}

[[agent.step]]
tool = "memory_write"
args = {{ name = "notes", content = {memory}, kind = {kind} }}

[[agent.step]]
tool = "ask_human"
args = {{ question = {question} }}

[[agent.step]]
tool = "exit"
args = {{ result = {result} }}

[[agent]]
image = "worker"

[[agent.step]]
tool = "read_file"
args = {{ path = {denied} }}

[[agent.step]]
tool = "read_file"
args = {{ path = {erasing} }}

[[agent.step]]
tool = "send"
args = {{ to = "parent", body = {body}, channel = {channel} }}

[[agent.step]]
tool = "receive"
args = {{ channel = {wait_channel} }}
"#,
        bad_tool = toml(BAD_TOOL),
        rationale = toml(RATIONALE),
        goal = toml(CHILD_GOAL),
        grant = toml(CHILD_GRANT),
        memory = toml(MEMORY),
        kind = toml(KIND),
        question = toml(QUESTION),
        result = toml(RESULT),
        denied = toml(DENIED_PATH),
        erasing = toml(ERASING_PATH),
        body = toml(BODY),
        channel = toml(CHANNEL),
        wait_channel = toml(WAIT_CHANNEL),
    )
}

/// The characters a terminal obeys rather than shows: C0 controls but the
/// renderer's own newlines, DEL, C1 controls, bidi embeddings, overrides and isolates.
fn raw_controls(out: &str) -> Vec<(usize, char)> {
    out.char_indices()
        .filter(|&(_, c)| {
            (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// Runs `libos ARGS` and checks that its output obeys nothing.
fn shown(env: &Env, args: &[&str]) -> String {
    let out = env.ok(args);
    assert_eq!(raw_controls(&out), vec![], "libos {args:?} prints raw control characters:\n{out}");
    out
}

/// Runs `libos ARGS --json` and parses it; the text itself is safe to print too.
fn json(env: &Env, args: &[&str]) -> Value {
    let out = shown(env, args);
    serde_json::from_str(&out).unwrap()
}

/// Audit sequence numbers, ages, timestamps, latencies and estimated token
/// counts vary; so does the padding after them. An age is a table cell, after a column gap.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", "[time]"),
        // The two processes' records interleave as the scheduler ran them.
        (r"(?m)^\d+ +\[time\]", "[seq] [time]"),
        (r"  \d+[smhd] +", "  [age] "),
        (r"(?m)  \d+[smhd]$", "  [age]"),
        (r"\d+ ms", "[ms] ms"),
        (r"~\d+/\d+", "~[in]/[out]"),
        (r"~\d+ +", "~[tokens] "),
    ]
}

/// Spawns the orchestrator and runs until both processes are parked: the
/// orchestrator on its question, the worker on a message that never comes.
fn hostile_run(env: &Env) {
    let script = env.write("hostile.toml", &script());
    env.write("clip.txt", FILE);
    env.ok(&["spawn", "orchestrator", "--goal", "coordinate the docs check"]);
    // One quantum at a time: whether the parent's `receive` parks before its
    // child's message arrives is then the same on every run.
    env.ok(&["run", "--until-idle", "--concurrency", "1", "--script", s(&script)]);
}

#[test]
fn pending_shows_a_question_with_escape_sequences_and_newlines_on_its_own_line() {
    let env = Env::new();
    hostile_run(&env);
    let out = shown(&env, &["pending"]);
    assert!(!out.lines().any(|l| l.starts_with("request 7")), "the question drew a fake request:\n{out}");
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("pending_question", out);
    });
    let open = json(&env, &["pending", "--json"]);
    assert_eq!((&open[0]["kind"], &open[0]["question"]), (&Value::from("question"), &Value::from(QUESTION)));
}

#[test]
fn audit_shows_an_erasing_path_escaped_and_the_denied_read_before_it_stays_visible() {
    let env = Env::new();
    hostile_run(&env);
    let out = shown(&env, &["audit", "--pid", "2", "--tool", "read_file"]);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("audit_erasing_path", out);
    });
    let records: Vec<Value> = shown(&env, &["audit", "--pid", "2", "--tool", "read_file", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<&Value> = records.iter().map(|r| &r["args"]["path"]).collect();
    assert_eq!(paths, vec![&Value::from(DENIED_PATH), &Value::from(ERASING_PATH)]);
    let outcomes: Vec<&Value> = records.iter().map(|r| &r["outcome"]).collect();
    assert_eq!(outcomes, vec![&Value::from("denied"), &Value::from("denied")]);
}

#[test]
fn logs_escape_osc_52_clipboard_writes_in_results_messages_and_rationales() {
    let env = Env::new();
    hostile_run(&env);
    let id = json(&env, &["pending", "--json"])[0]["id"].to_string();
    env.ok(&["answer", &id, "yes"]);
    env.ok(&["run", "--until-idle", "--concurrency", "1", "--script", s(&env.path("hostile.toml"))]);
    let out = shown(&env, &["logs", "1"]);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("logs_orchestrator", out);
    });
    let out = shown(&env, &["logs", "2"]);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("logs_worker", out);
    });

    let t = json(&env, &["logs", "1", "--json"]);
    assert_eq!(t["process"]["state_detail"], serde_json::json!({"code": 0, "result": RESULT}));
    let calls: Vec<(&Value, &Value)> = t["quanta"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| q["tool_calls"].as_array().unwrap())
        .map(|c| (&c["tool"], &c["result"]))
        .filter(|(tool, _)| *tool == "receive" || *tool == "read_file")
        .collect();
    assert_eq!(calls.len(), 2, "{t}");
    assert!(calls[0].1.as_str().unwrap().contains(BODY), "{t}");
    assert_eq!(calls[1].1, &Value::from(FILE));
    let says: Vec<&Value> = t["quanta"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| q["tool_calls"].as_array().unwrap())
        .filter_map(|c| c.get("rationale").filter(|r| !r.is_null()))
        .collect();
    assert_eq!(says, vec![&Value::from(RATIONALE)]);
}

#[test]
fn ps_shows_a_goal_with_control_characters_and_newlines_on_one_line() {
    let env = Env::new();
    hostile_run(&env);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("ps_hostile_goal", shown(&env, &["ps"]));
        insta::assert_snapshot!("ps_tree_hostile_goal", shown(&env, &["ps", "--tree"]));
    });
    let ps = json(&env, &["ps", "--json"]);
    let goals: Vec<&Value> = ps.as_array().unwrap().iter().map(|p| &p["goal"]).collect();
    assert_eq!(goals, vec![&Value::from("coordinate the docs check"), &Value::from(CHILD_GOAL)]);
    assert_eq!(ps[1]["state_detail"], serde_json::json!({"on": {"message": format!("channel={WAIT_CHANNEL}")}}));
}

#[test]
fn inbox_memory_and_caps_escape_what_the_model_wrote() {
    let env = Env::new();
    hostile_run(&env);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("inbox_hostile", shown(&env, &["inbox", "1"]));
        insta::assert_snapshot!("memory_hostile", shown(&env, &["memory", "1"]));
        insta::assert_snapshot!("memory_show_hostile", shown(&env, &["memory", "show", "1"]));
        insta::assert_snapshot!("caps_hostile", shown(&env, &["caps", "2"]));
    });
    let inbox = json(&env, &["inbox", "1", "--json"]);
    assert_eq!((&inbox[0]["body"], &inbox[0]["channel"]), (&Value::from(BODY), &Value::from(CHANNEL)));
    let object = json(&env, &["memory", "show", "1", "--json"]);
    assert_eq!((&object["content"], &object["kind"]), (&Value::from(MEMORY), &Value::from(KIND)));
    let view = json(&env, &["memory", "1", "--json"]);
    assert_eq!(view[0]["kind"], Value::from(KIND));
    let caps = json(&env, &["caps", "2", "--json"]);
    let resources: Vec<&Value> = caps.as_array().unwrap().iter().map(|g| &g["resource"]).collect();
    assert_eq!(resources, vec![&Value::from("fs:**"), &Value::from(&CHILD_GRANT["read ".len()..])]);
}

#[test]
fn pause_and_resume_escape_the_state_they_print() {
    let env = Env::new();
    hostile_run(&env);
    assert_eq!(shown(&env, &["pause", "2"]), "pid 2 is paused (was waiting (message: channel=orders\\u{1b}[8m))\n");
    assert_eq!(shown(&env, &["resume", "2"]), "pid 2 is waiting (message: channel=orders\\u{1b}[8m)\n");
}

/// An approval whose path carries a C1 control and an escape sequence.
const DELETE_PATH: &str = "old\u{9b}2J\u{1b}[1Anotes.md";

#[test]
fn an_approval_of_a_hostile_path_is_escaped_in_pending_deny_always_and_spawn_run() {
    let env = Env::new();
    let script = env.write(
        "s.toml",
        &format!(
            "[[agent]]\nimage = \"assistant\"\ngoal_contains = \"tidy\"\n[[agent.step]]\ntool = \"delete_file\"\nargs = {{ path = {} }}\n[[agent.step]]\ntool = \"exit\"\nargs = {{ result = \"tidied\" }}\n\n[[agent]]\nimage = \"assistant\"\n[[agent.step]]\ntool = \"exit\"\nargs = {{ result = {} }}\n",
            toml(DELETE_PATH),
            toml(RESULT)
        ),
    );
    let out = shown(&env, &["spawn", "assistant", "--goal", "tidy up", "--run", "--script", s(&script)]);
    assert_eq!(out, "1\npid 1 is waiting (human: request 1)\n");
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("pending_hostile_path", shown(&env, &["pending"]));
    });
    let open = json(&env, &["pending", "--json"]);
    assert_eq!(
        (&open[0]["resource"], &open[0]["args"]),
        (&Value::from(format!("fs:{DELETE_PATH}")), &serde_json::json!({"path": DELETE_PATH}))
    );
    assert_eq!(
        shown(&env, &["deny", "1", "--always"]),
        "denied request 1: pid 1 is told so and goes on\n\
         grant 4: delete fs:old\\u{9b}2J\\u{1b}[1Anotes.md is denied from now on\n"
    );
    let out = shown(&env, &["spawn", "assistant", "--goal", "finish", "--run", "--script", s(&script)]);
    assert_eq!(out, "2\npid 2 exited(0): done\\r\\u{1b}]52;c;cHduZWQ=\\u{7}\\u{202e}evil\n");
}

#[test]
fn images_escape_descriptions_from_image_directories_and_errors_escape_what_they_quote() {
    let env = Env::new();
    std::fs::create_dir(env.path("images")).unwrap();
    let worker =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../images/shipped/worker.toml")).unwrap();
    let hostile = worker.replacen("name = \"worker\"", "name = \"sly\"", 1).replacen(
        "description = \"Does one task with the grants its parent delegated, and reports back by message.\"",
        &format!("description = {}", toml("Looks\u{1b}[2K harmless\u{202e}.")),
        1,
    );
    assert_ne!(hostile, worker);
    env.write("images/sly.toml", &hostile);
    env.write("libos.toml", "image_dirs = [\"./images\"]\n");
    let listed = shown(&env, &["images"]);
    let line = listed.lines().find(|l| l.starts_with("sly")).unwrap();
    assert!(line.ends_with("Looks\\u{1b}[2K harmless\\u{202e}."), "{listed}");
    let one = shown(&env, &["images", "show", "sly"]);
    assert_eq!(one.lines().nth(1), Some("Looks\\u{1b}[2K harmless\\u{202e}."), "{one}");

    let (code, err) = env.fails(&["images", "show", "x\u{1b}]52;c;cHduZWQ=\u{7}"]);
    assert_eq!(raw_controls(&err), vec![], "stderr: {err}");
    assert_eq!(
        (code, err.lines().next()),
        (
            3,
            Some(
                "libos: error: no image named `x\\u{1b}]52;c;cHduZWQ=\\u{7}` (available: assistant, coder, orchestrator, reviewer, sly, worker)"
            )
        )
    );
}

/// A provider whose every answer is a 400 with `message` as its error.
fn failing_provider(message: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // Read the whole request (headers, then Content-Length bytes) before answering.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let body = serde_json::json!({"error": {"message": message}}).to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[test]
fn a_provider_error_with_control_characters_is_escaped_on_stderr_and_in_logs() {
    const ERROR: &str = "bad request\r\u{1b}[2K\u{1b}]52;c;cHduZWQ=\u{7}all is well\u{202e}";
    let env = Env::new();
    let base = failing_provider(ERROR);
    env.ok(&["spawn", "assistant", "--goal", "talk to the provider"]);
    let out = env
        .cmd(&["run", "--until-idle"])
        .env("OPENAI_BASE_URL", &base)
        .env("LIBOS_MODEL", "test-model")
        // The log's own colours are libos's, not model text.
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(raw_controls(&stderr), vec![], "stderr:\n{stderr}");
    let escaped = "bad request\\r\\u{1b}[2K\\u{1b}]52;c;cHduZWQ=\\u{7}all is well\\u{202e}";
    assert!(stderr.contains(&format!("model call failed: endpoint returned 400 Bad Request: {escaped}")), "{stderr}");
    let logs = shown(&env, &["logs", "1"]);
    assert!(logs.contains(&format!("  model error: endpoint returned 400 Bad Request: {escaped}")), "{logs}");
    assert!(logs.ends_with(&format!("failed(model_error): endpoint returned 400 Bad Request: {escaped}\n")), "{logs}");
    let ps = json(&env, &["ps", "--all", "--json"]);
    assert_eq!(
        ps[0]["state_detail"],
        serde_json::json!({"kind": "model_error", "error": format!("endpoint returned 400 Bad Request: {ERROR}")})
    );
}
