//! Operator-defined command tools (issue 15): `[tools.NAME]` in
//! `libos.toml` gives images a tool of the operator's own, run like
//! `shell` in the sandbox, each call needing `exec tool:NAME`, its
//! arguments validated against the entry's schema and placed as whole argv
//! elements.

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

const CONFIG: &str = r#"
image_dirs = ["imgs"]

[tools.word_count]
description = "Count the words of a workspace file"
argv = ["wc", "-w", "--", "{path}"]
schema = { type = "object", properties = { path = { type = "string", description = "A file in the workspace" } }, required = ["path"], additionalProperties = false }

[tools.greet]
description = "Greet someone"
argv = ["echo", "hello", "{name}"]
schema = { type = "object", properties = { name = { type = "string" } }, required = ["name"] }
"#;

const IMAGE: &str = r#"
name = "counter"
version = "1.0.0"
description = "Counts words with the operator's tool."
model = "default"
tools = ["word_count", "greet", "exit"]
grants = ["exec tool:word_count", "exec tool:greet ask"]
system_prompt = "Count words."
"#;

const SCRIPT: &str = r#"
[[agent]]
image = "counter"

[[agent.step]]
tool = "word_count"
args = { path = "notes.txt" }

[[agent.step]]
tool = "word_count"
args = { path = "notes.txt", extra = "; rm -rf /" }

[[agent.step]]
tool = "greet"
args = { name = "-e \\x1b[2J" }

[[agent.step]]
tool = "greet"
args = { name = "world; rm -rf /" }

[[agent.step]]
tool = "exit"
args = { result = "counted" }
"#;

fn setup() -> (Env, std::path::PathBuf) {
    let env = Env::new();
    env.write("libos.toml", CONFIG);
    std::fs::create_dir_all(env.path("imgs")).unwrap();
    env.write("imgs/counter.toml", IMAGE);
    env.write("notes.txt", "one two three\n");
    let script = env.write("play.toml", SCRIPT);
    (env, script)
}

/// Each call of process 1 as `tool outcome: first line of the result`.
fn calls(env: &Env) -> Vec<String> {
    let logs: Value = serde_json::from_str(&env.ok(&["logs", "1", "--json"])).unwrap();
    let mut out = Vec::new();
    for q in logs["quanta"].as_array().unwrap() {
        for m in q["model_calls"].as_array().unwrap() {
            if m["outcome"] == "rejected" {
                out.push(format!("rejected: {}", m["error"].as_str().unwrap_or("")));
            }
        }
        for c in q["tool_calls"].as_array().unwrap() {
            let result = c["result"].as_str().unwrap_or("");
            let shown: Vec<&str> = result.lines().filter(|l| !l.is_empty()).take(3).collect();
            out.push(format!(
                "{} {}: {}",
                c["tool"].as_str().unwrap(),
                c["outcome"].as_str().unwrap_or("?"),
                shown.join(" | ")
            ));
        }
    }
    out
}

#[test]
fn an_operator_tool_runs_sandboxed_with_its_arguments_as_whole_argv_elements() {
    let (env, script) = setup();
    env.ok(&["spawn", "counter", "--goal", "count the notes"]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    // The third call is parked on `ask`: the approval card shows it whole.
    let pending: Value = serde_json::from_str(&env.ok(&["pending", "--json"])).unwrap();
    assert_eq!(pending[0]["tool"], "greet");
    assert_eq!(pending[0]["resource"], "tool:greet");
    let id = pending[0]["id"].as_i64().unwrap().to_string();
    env.ok(&["approve", &id]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let pending: Value = serde_json::from_str(&env.ok(&["pending", "--json"])).unwrap();
    let id = pending[0]["id"].as_i64().unwrap().to_string();
    env.ok(&["approve", &id]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    assert_eq!(
        calls(&env),
        [
            "word_count ok: exit status 0 | stdout: | 3 notes.txt",
            // Schema-invalid: the model is told, and nothing runs.
            "rejected: invalid arguments for `word_count`: the arguments: Additional properties are not allowed ('extra' was unexpected)",
            "greet error: argument `name` starts with `-`, which the program would read as an option",
            "greet ok: exit status 0 | stdout: | hello world; rm -rf /",
            "exit ok: process exited",
        ]
    );
    let shown = env.ok(&["images", "show", "counter"]);
    assert!(shown.contains("word_count"), "{shown}");
}

#[test]
fn a_bad_tool_entry_is_a_one_line_error_naming_it() {
    for (entry, want) in [
        (
            "[tools.read_file]\ndescription = \"x\"\nargv = [\"cat\"]\n",
            "tools.read_file: tool `read_file` is a built-in",
        ),
        ("[tools.t]\ndescription = \"x\"\nargv = [\"echo\", \"--n={n}\"]\n", "tools.t: argv element `--n={n}` mixes"),
        ("[tools.t]\nargv = [\"echo\"]\n", "tools.t: missing field `description`"),
    ] {
        let env = Env::new();
        env.write("libos.toml", entry);
        let (code, stderr) = env.fails(&["run", "--until-idle"]);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{stderr} should contain {want}");
        assert_ne!(code, 0);
    }
}
