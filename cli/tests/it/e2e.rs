//! Scripted runs through the binary.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

const SCRIPT: &str = r#"
[[agent]]
image = "assistant"

[[agent.step]]
say = "Write the greeting."
tool = "write_file"
args = { path = "hello.txt", content = "hello from libos\n" }

[[agent.step]]
tool = "read_file"
args = { path = "../escape.txt" }

[[agent.step]]
tool = "exit"
args = { result = "greeted" }
"#;

#[test]
fn spawn_run_ps_logs_and_audit_verify_through_the_binary() {
    let env = Env::new();
    let script = env.write("script.toml", SCRIPT);
    assert_eq!(env.ok(&["spawn", "assistant", "--goal", "greet the world"]), "1\n");
    let out = env.ok(&["run", "--until-idle", "--script", s(&script)]);
    assert_eq!(out, "");
    assert_eq!(std::fs::read_to_string(env.path("hello.txt")).unwrap(), "hello from libos\n");

    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(ps[0]["state"], "exited");
    assert_eq!(ps[0]["state_detail"], serde_json::json!({"code": 0, "result": "greeted"}));
    assert_eq!(ps[0]["usage"]["quanta"], 3);
    assert_eq!(ps[0]["usage"]["tokens_estimated"], true);
    assert_eq!(env.ok(&["ps"]).lines().count(), 1, "only the header: nothing is live");

    let logs = env.ok(&["logs", "1"]);
    for needle in [
        "pid 1 · assistant · exited(0) · goal: greet the world",
        "  says: Write the greeting.",
        "  call: write_file {\"content\":\"hello from libos\\n\",\"path\":\"hello.txt\"}",
        "  result (ok): wrote 17 bytes to `hello.txt`",
        "  result (denied): permission denied: path `../escape.txt` is outside the workspace",
        "exited(0): greeted",
    ] {
        assert!(logs.contains(needle), "logs lack {needle:?}:\n{logs}");
    }

    let verify = env.ok(&["audit", "verify"]);
    let head = env.ok(&["audit", "head"]);
    assert_eq!(verify, format!("audit chain intact: 11 records, head {}", head));
    env.ok(&["audit", "verify", "--expect-head", head.trim()]);

    // The escape is an audited denial, of the path as the model gave it.
    let denied = env.ok(&["audit", "--outcome", "denied", "--json"]);
    let records: Vec<Value> = denied.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 1);
    assert_eq!(
        [&records[0]["action"], &records[0]["args"], &records[0]["decision"], &records[0]["detail"]],
        [
            &Value::from("read_file"),
            &serde_json::json!({"path": "../escape.txt"}),
            &Value::from("deny"),
            &Value::from(
                "permission denied: path `../escape.txt` is outside the workspace [read fs:../escape.txt: deny (confined)]"
            )
        ]
    );
    let tools: Vec<String> = env
        .ok(&["audit", "--pid", "1", "--tool", "write_file"])
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(5).unwrap().to_string())
        .collect();
    assert_eq!(tools, vec!["pending", "ok"]);
}

#[test]
fn a_kill_from_another_process_cancels_the_running_quantum() {
    let env = Env::new();
    let script = env.write(
        "slow.toml",
        "[[agent]]\nimage = \"assistant\"\n[[agent.step]]\ntool = \"write_file\"\nargs = { path = \"late.txt\", content = \"x\" }\ndelay_ms = 86400000\n",
    );
    env.ok(&["spawn", "assistant", "--goal", "slow work"]);
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin("libos"))
        .current_dir(env.dir.path())
        .env("LIBOS_DB", env.db())
        .args(["run", "--until-idle", "--script", s(&script)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ps: Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
        if ps[0]["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "the scheduler never leased the process");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(env.ok(&["kill", "1", "--reason", "operator says stop"]), "killed pid 1\n");
    let status = run.wait().unwrap();
    assert!(status.success());
    // The quantum's model "thinks" for a day: `run --until-idle` returning at
    // all proves the kill cancelled it (nextest terminates a hung test).
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(ps[0]["state_detail"], serde_json::json!({"by": "human:operator", "reason": "operator says stop"}));
    assert!(!env.path("late.txt").exists());
    // The quantum it cut off committed nothing, and `logs` says why.
    let logs = env.ok(&["logs", "1"]);
    let quantum: Vec<&str> = logs.lines().skip(2).take(2).collect();
    assert!(quantum[0].starts_with("quantum 1 · ") && quantum[0].ends_with(" · no model call"), "{logs}");
    assert_eq!(quantum[1], "  killed by human:operator during the quantum", "{logs}");
    env.ok(&["audit", "verify"]);
}

#[test]
fn the_demo_runs_and_verifies() {
    let env = Env::new();
    let out = env.ok(&["demo", "--dir", s(&env.path("demo"))]);
    for needle in [
        "dropped: `write fs:ops/** allow` is not covered by any delegable grant of yours",
        "from pid:4 channel=reports: ops: the runbook asks for a key rotation",
        "permission denied: read fs:secrets/keys.txt (no grant of yours covers it)",
        "$ libos approve 1",
        "$ libos deny 2 --reason \"key rotation needs a change ticket\"",
        "result (denied): denied by human:operator: key rotation needs a change ticket",
        "└ 4  1     worker",
        "audit chain intact:",
    ] {
        assert!(out.contains(needle), "demo output lacks {needle:?}:\n{out}");
    }
    assert!(std::fs::read_to_string(env.path("demo/REPORT.md")).unwrap().starts_with("# Project report"));
    assert_eq!(std::fs::read_to_string(env.path("demo/secrets/keys.txt")).unwrap(), "original-key\n");
}

#[test]
fn images_lists_the_shipped_images() {
    let env = Env::new();
    insta::assert_snapshot!(env.ok(&["images"]));
}

#[test]
fn ps_shows_the_table_and_the_tree() {
    let env = Env::new();
    let script = env.write(
        "s.toml",
        "[[agent]]\nimage = \"orchestrator\"\n[[agent.step]]\ntool = \"spawn\"\nargs = { image = \"worker\", goal = \"check the docs\" }\n[[agent.step]]\ntool = \"receive\"\nargs = {}\n\n[[agent]]\nimage = \"worker\"\n[[agent.step]]\ntool = \"exit\"\nargs = { result = \"checked\" }\n",
    );
    env.ok(&["spawn", "orchestrator", "--goal", "coordinate the checks"]);
    env.ok(&["spawn", "assistant", "--goal", "a quiet assistant that never runs", "--priority", "-1"]);
    env.ok(&["kill", "2"]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    // Ages and estimated token counts vary; so would the padding after them.
    let age = vec![(r"\b\d+(s|m|h|d) +", "[age] "), (r"~\d+ +", "~[tokens] ")];
    insta::with_settings!({ filters => age }, {
        insta::assert_snapshot!("ps_all", env.ok(&["ps", "--all"]));
        insta::assert_snapshot!("ps_tree", env.ok(&["ps", "--all", "--tree"]));
    });
}

#[test]
fn audit_follow_prints_new_records_as_they_are_committed() {
    use std::io::BufRead;

    let env = Env::new();
    env.ok(&["spawn", "worker", "--goal", "wait for mail"]);
    let mut follow = std::process::Command::new(assert_cmd::cargo::cargo_bin("libos"))
        .current_dir(env.dir.path())
        .env("LIBOS_DB", env.db())
        .args(["audit", "--follow", "--json", "--pid", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_action = || -> String {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("audit --follow printed nothing");
        serde_json::from_str::<Value>(&line).unwrap()["action"].as_str().unwrap().to_string()
    };
    assert_eq!(next_action(), "spawn");
    env.ok(&["send", "1", "are you there?"]);
    assert_eq!(next_action(), "send");
    env.ok(&["kill", "1"]);
    assert_eq!(next_action(), "kill");
    follow.kill().unwrap();
    follow.wait().unwrap();
}

#[test]
fn memory_lists_a_view_and_shows_an_object() {
    let env = Env::new();
    let script = env.write(
        "m.toml",
        "[[agent]]\nimage = \"assistant\"\n[[agent.step]]\ntool = \"memory_write\"\nargs = { name = \"notes\", content = \"remember the milk\", kind = \"note\" }\n[[agent.step]]\ntool = \"memory_pin\"\nargs = { oid = 1 }\n[[agent.step]]\ntool = \"exit\"\nargs = { result = \"noted\" }\n",
    );
    env.ok(&["spawn", "assistant", "--goal", "take notes"]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    assert_eq!(
        env.ok(&["memory", "1"]),
        "OID  OBJECT       KIND  VERSION  BYTES  RIGHTS      PINNED  FROM\n1    pid:1/notes  note  1        17     read,write  yes     pid:1\n"
    );
    let shown = env.ok(&["memory", "show", "1"]);
    assert!(shown.starts_with("object 1 · pid:1/notes · note · version 1 · owner pid 1 · updated "), "{shown}");
    assert!(shown.ends_with("\n\nremember the milk\n"), "{shown}");
    assert_eq!(env.fails(&["memory", "show", "9"]), (3, "libos: error: no object with id 9\n".to_string()));
    assert_eq!(env.fails(&["memory"]).0, 2);
    // Searching the view: by the words objects contain, as the tool does.
    assert_eq!(
        env.ok(&["memory", "search", "1", "milk"]),
        "OID  OBJECT       SCORE  SNIPPET\n1    pid:1/notes  1.00   remember the [milk]\n"
    );
    let hits: Value = serde_json::from_str(&env.ok(&["memory", "search", "1", "notes", "milk", "--json"])).unwrap();
    assert_eq!(
        hits,
        serde_json::json!([{"oid": 1, "namespace": "pid:1", "name": "notes", "kind": "note",
            "snippet": "remember the [milk]", "score": 3.0}])
    );
    assert_eq!(env.ok(&["memory", "search", "1", "bread"]), "OID  OBJECT  SCORE  SNIPPET\n");
    let (code, err) = env.fails(&["memory", "search", "1", "&&&", "..."]);
    assert_eq!(
        (code, err.as_str()),
        (2, "libos: error: the search query has no words (letters or digits) to look for\n")
    );
    assert_eq!(env.fails(&["memory", "search", "7", "milk"]), (3, "libos: error: no process with pid 7\n".to_string()));
}

/// What a model wrote into memory reaches the operator's terminal through
/// a search's snippet: its control characters (an OSC 52 clipboard write,
/// a screen clear) are shown escaped, never sent to the terminal.
#[test]
fn a_memory_search_shows_model_written_snippets_escaped() {
    let env = Env::new();
    let script = env.write(
        "m.toml",
        "[[agent]]\nimage = \"assistant\"\n[[agent.step]]\ntool = \"memory_write\"\nargs = { name = \"trap\", content = \"evil \\u001b]52;c;aGk=\\u0007 and \\u001b[2J here\" }\n[[agent.step]]\ntool = \"exit\"\nargs = { result = \"set\" }\n",
    );
    env.ok(&["spawn", "assistant", "--goal", "set a trap"]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let out = env.ok(&["memory", "search", "1", "evil"]);
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert!(out.contains("[evil] \\u{1b}]52;c;aGk=\\u{7}"), "{out}");
}

#[test]
fn replay_of_the_demo_matches_and_a_changed_recording_diverges() {
    let env = Env::new();
    let demo = env.path("demo");
    env.ok(&["demo", "--dir", s(&demo)]);
    let db = demo.join(".libos/libos.db");
    let replay = |args: &[&str]| {
        let mut cmd = env.cmd(args);
        cmd.env("LIBOS_DB", &db);
        cmd.output().unwrap()
    };
    let out = replay(&["replay", "1"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.lines().map(|l| l.split(':').next().unwrap()).collect::<Vec<_>>(),
        vec![
            "replay of pid 1 and 3 descendants in a scratch store, on the recorded model answers",
            "pid 1 (orchestrator) -> replay pid 1",
            "pid 2 (worker) -> replay pid 2",
            "pid 3 (worker) -> replay pid 3",
            "pid 4 (worker) -> replay pid 4",
            "the replay matches the original, call for call",
        ]
    );

    // Change what the docs worker was recorded to answer first: the replay
    // makes a different call there, and says so.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE model_calls SET response = replace(response, '\\\"docs\\\"', '\\\"api\\\"') WHERE pid = 2 AND id = \
         (SELECT min(id) FROM model_calls WHERE pid = 2)",
        [],
    )
    .unwrap();
    let out = replay(&["replay", "1"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("pid 2 (worker) -> replay pid 2: diverged at call 1: the original made `list_dir args "),
        "{text}"
    );
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "libos: error: the replay diverged from the original run\n");
}
