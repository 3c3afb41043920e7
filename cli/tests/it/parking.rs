//! Parking through the binary: a scheduler in one process, the operator's
//! approvals, grants and messages from others.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

const SCRIPT: &str = r#"
[[agent]]
image = "assistant"
goal_contains = "release notes"

[[agent.step]]
say = "Draft the notes."
tool = "write_file"
args = { path = "NOTES.md", content = "v2: parking\n" }

[[agent.step]]
tool = "delete_file"
args = { path = "OLD.md" }

[[agent.step]]
tool = "ask_human"
args = { question = "Ship it?" }

[[agent.step]]
tool = "exit"
args = { result = "notes written" }
"#;

fn scheduler(env: &Env, script: &std::path::Path) -> Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("libos"))
        .current_dir(env.dir.path())
        .env("LIBOS_DB", env.db())
        .args(["run", "--script", s(script)])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls `libos pending --json` until `n` requests are open.
fn pending(env: &Env, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open: Vec<Value> = serde_json::from_str(&env.ok(&["pending", "--json"])).unwrap();
        if open.len() == n {
            return open;
        }
        assert!(Instant::now() < deadline, "expected {n} pending requests, have {open:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state(env: &Env, pid: &str) -> Value {
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    ps.as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"].as_i64().map(|n| n.to_string()).as_deref() == Some(pid))
        .unwrap()
        .clone()
}

#[test]
fn a_running_scheduler_resumes_parked_calls_decided_from_other_processes() {
    let env = Env::new();
    let script = env.write("script.toml", SCRIPT);
    env.write("OLD.md", "old notes\n");
    let pid = env.ok(&["spawn", "assistant", "--goal", "write the release notes", "--grant", "write fs:NOTES.md ask"]);
    let pid = pid.trim();
    let mut run = scheduler(&env, &script);

    // The write parks; the request shows the exact call.
    let open = pending(&env, 1);
    assert_eq!(
        (&open[0]["tool"], &open[0]["args"], &open[0]["resource"], &open[0]["right"]),
        (
            &Value::from("write_file"),
            &serde_json::json!({"path": "NOTES.md", "content": "v2: parking\n"}),
            &Value::from("fs:NOTES.md"),
            &Value::from("write")
        )
    );
    assert!(env.ok(&["pending"]).contains("asks: write fs:NOTES.md"));
    let id = open[0]["id"].to_string();
    assert_eq!(env.ok(&["approve", &id]), format!("approved request {id}: pid {pid} will run write_file as parked\n"));
    assert_eq!(env.fails(&["approve", &id]), (6, format!("libos: error: request {id} was already approved\n")));

    // The delete asks too (the assistant image says so); deny it with a reason.
    let open = pending(&env, 1);
    let id = open[0]["id"].to_string();
    assert_eq!(open[0]["tool"], "delete_file");
    env.ok(&["deny", &id, "--reason", "keep the old notes"]);

    // Then a question.
    let open = pending(&env, 1);
    assert_eq!(open[0]["question"], "Ship it?");
    let id = open[0]["id"].to_string();
    assert_eq!(env.fails(&["approve", &id]).0, 6);
    env.ok(&["answer", &id, "yes, ship it"]);

    let deadline = Instant::now() + Duration::from_secs(20);
    while state(&env, pid)["state"] != "exited" {
        assert!(Instant::now() < deadline, "the process never finished: {}", state(&env, pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();

    assert_eq!(std::fs::read_to_string(env.path("NOTES.md")).unwrap(), "v2: parking\n");
    assert!(env.path("OLD.md").exists());
    let logs = env.ok(&["logs", pid]);
    for needle in [
        "  result (ok): wrote 12 bytes to `NOTES.md`",
        "  result (denied): denied by human:operator: keep the old notes",
        "  result (ok): human:operator answered: yes, ship it",
    ] {
        assert!(logs.contains(needle), "logs lack {needle:?}:\n{logs}");
    }
    env.ok(&["audit", "verify"]);
}

#[test]
fn grants_caps_revoke_send_inbox_pause_and_resume_from_the_shell() {
    let env = Env::new();
    let pid = env.ok(&["spawn", "worker", "--goal", "idle", "--grant", "read fs:docs/** delegable uses=3"]);
    let pid = pid.trim();
    assert_eq!(
        env.ok(&["grant", pid, "read", "fs:src/**", "--effect", "ask"]),
        format!("grant 2: read fs:src/** ask to pid {pid}\n")
    );
    let caps: Value = serde_json::from_str(&env.ok(&["caps", pid, "--json"])).unwrap();
    let lines: Vec<String> = caps
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{} {} {} {} {}", g["id"], g["rights"], g["resource"], g["effect"], g["status"]))
        .collect();
    assert_eq!(lines, vec![r#"1 "read" "fs:docs/**" "allow" "live""#, r#"2 "read" "fs:src/**" "ask" "live""#]);
    assert_eq!(
        env.ok(&["revoke", "2"]),
        format!("revoked grant 2 (read fs:src/** of pid {pid}) and 0 grants derived from it\n")
    );
    assert_eq!(env.fails(&["revoke", "2"]), (6, "libos: error: grant 2 was already revoked\n".to_string()));
    assert_eq!(env.fails(&["revoke", "77"]).0, 3);
    assert_eq!(env.fails(&["grant", pid, "fly", "fs:x"]).0, 2);

    assert_eq!(env.ok(&["send", pid, "hello", "--interrupt"]), format!("sent message 1 to pid {pid}\n"));
    assert!(env.ok(&["inbox", pid]).contains("human:operator  interrupt"));
    assert_eq!(env.ok(&["pause", pid]), format!("pid {pid} is paused (was runnable)\n"));
    assert_eq!(env.ok(&["resume", pid]), format!("pid {pid} is runnable\n"));
    assert_eq!(env.fails(&["resume", pid]).0, 6);
    assert_eq!(env.fails(&["approve", "1"]), (3, "libos: error: no request with id 1\n".to_string()));
    assert_eq!(env.fails(&["send", "99", "x"]).0, 3);
    env.ok(&["kill", pid, "--tree"]);
    assert_eq!(env.fails(&["send", pid, "x"]).0, 6);
}

#[test]
fn the_orchestrator_scenario_runs_through_the_binary_with_decisions_from_another_process() {
    let env = Env::new();
    let script = env.write("demo.toml", include_str!("../../src/demo.toml"));
    for (path, text) in [
        ("docs/overview.md", "overview\n"),
        ("api/endpoints.md", "endpoints\n"),
        ("ops/runbook.md", "runbook\n"),
        ("secrets/keys.txt", "original\n"),
    ] {
        std::fs::create_dir_all(env.path(path).parent().unwrap()).unwrap();
        env.write(path, text);
    }
    let pid = env.ok(&["spawn", "orchestrator", "--goal", "summarise the three areas into REPORT.md"]);
    let pid = pid.trim();
    let mut run = scheduler(&env, &script);
    let open = pending(&env, 1);
    assert_eq!(open[0]["resource"], "fs:REPORT.md");
    env.ok(&["approve", &open[0]["id"].to_string()]);
    let open = pending(&env, 1);
    assert_eq!(open[0]["resource"], "fs:secrets/keys.txt");
    env.ok(&["deny", &open[0]["id"].to_string(), "--reason", "needs a ticket"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(&env, pid)["state"] != "exited" {
        assert!(Instant::now() < deadline, "the orchestrator never finished: {}", state(&env, pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let tree = env.ok(&["ps", "--all", "--tree"]);
    let shape: Vec<String> =
        tree.lines().skip(1).map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(shape, vec!["1 - orchestrator exited(0)", "└ 2 1 worker", "└ 3 1 worker", "└ 4 1 worker",]);
    assert_eq!(std::fs::read_to_string(env.path("secrets/keys.txt")).unwrap(), "original\n");
    assert!(env.path("REPORT.md").exists());
    let inbox = env.ok(&["inbox", pid]);
    assert_eq!(inbox.lines().filter(|l| l.contains("reports") && l.contains("read")).count(), 3, "{inbox}");
    env.ok(&["audit", "verify"]);
}

#[test]
fn approving_a_parked_call_edited_in_the_store_fails_in_one_line_and_is_audited() {
    let env = Env::new();
    let script = env.write(
        "script.toml",
        r#"
[[agent]]
image = "coder"
goal_contains = "harmless"

[[agent.step]]
tool = "shell"
args = { argv = ["echo", "harmless"] }

[[agent.step]]
tool = "exit"
args = { result = "done" }
"#,
    );
    env.ok(&["spawn", "coder", "--goal", "say something harmless"]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let open = pending(&env, 1);
    let evil = serde_json::json!({"argv": ["sh", "-c", format!("touch {}", env.path("pwned").display())]});
    rusqlite::Connection::open(env.db()).unwrap().execute("UPDATE parked SET args = ?1", [evil.to_string()]).unwrap();

    let id = open[0]["id"].to_string();
    let (code, stderr) = env.fails(&["approve", &id]);
    let message = format!(
        "request {id} refused: the stored call differs from the call recorded in the audit log (record 3) in the \
         parked call's arguments; the request is cancelled and the call will not run"
    );
    assert_eq!((code, stderr), (6, format!("libos: error: {message}\n")));
    let denied = env.ok(&["audit", "--outcome", "denied", "--json"]);
    let denied: Vec<Value> = denied.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let denied: Vec<(&Value, &Value, &Value)> =
        denied.iter().map(|r| (&r["action"], &r["decision"], &r["detail"])).collect();
    // The refusal, with its check; and the call it cancelled, refused too.
    let check = "[exec shell:echo: deny (not what the audit log recorded)]";
    assert_eq!(
        denied,
        vec![
            (&Value::from("approve"), &Value::from("deny"), &Value::from(format!("{message} {check}"))),
            (&Value::from("shell"), &Value::from("deny"), &Value::from("cancelled")),
        ]
    );

    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    assert!(!env.path("pwned").exists());
    env.ok(&["audit", "verify"]);
}
