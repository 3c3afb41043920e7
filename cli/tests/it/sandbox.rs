//! Issue 14, the sandbox from the operator's side: `libos run` probes it at
//! start; where it cannot be had, programs are refused with the reason
//! (never run weaker), unless the operator says `--unconfined-shell`, which
//! the audit log records; and `libos kill` stops a running program with
//! everything it started.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

/// A script in which the coder runs `argv` once and exits.
fn runs(argv: &[&str]) -> String {
    let steps = serde_json::json!([
        {"tool": "shell", "args": {"argv": argv, "timeout_s": 30}},
        {"tool": "exit", "args": {"result": "ran"}},
    ]);
    toml::to_string(&serde_json::json!({"agent": [{"image": "coder", "step": steps}]})).unwrap()
}

/// The result of process 1's first call.
fn first_result(env: &Env) -> String {
    let logs: Value = serde_json::from_str(&env.ok(&["logs", "1", "--json"])).unwrap();
    logs["quanta"][0]["tool_calls"][0]["result"].as_str().unwrap().to_string()
}

#[test]
fn without_a_sandbox_programs_are_refused_unless_the_operator_runs_them_unconfined() {
    let env = Env::new();
    let script = env.write("play.toml", &runs(&["sh", "-c", "echo ran > ran.txt"]));
    env.ok(&["spawn", "coder", "--goal", "run it", "--grant", "exec shell:sh"]);
    // A launcher that cannot build a sandbox: the probe fails.
    let out = env
        .cmd(&["run", "--until-idle", "--script", s(&script)])
        .env("LIBOS_SANDBOX_LAUNCHER", "/bin/false")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .starts_with("libos: warning: shell programs will be refused: the sandbox cannot be set up on this host: "),
        "{stderr}"
    );
    assert!(first_result(&env).starts_with("`sh` was not run: programs are not run: the sandbox is unavailable ("));
    assert!(!env.path("ran.txt").exists());

    let env = Env::new();
    let script = env.write("play.toml", &runs(&["sh", "-c", "echo ran > ran.txt"]));
    env.ok(&["spawn", "coder", "--goal", "run it", "--grant", "exec shell:sh"]);
    let out = env
        .cmd(&["run", "--until-idle", "--unconfined-shell", "--script", s(&script)])
        .env("LIBOS_SANDBOX_LAUNCHER", "/bin/false")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(env.path("ran.txt")).unwrap(), "ran\n");
    let audit = env.ok(&["audit", "--json"]);
    let record: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["action"] == "unconfined_shell")
        .unwrap();
    assert_eq!(
        (record["actor"].as_str(), record["kind"].as_str(), record["detail"].as_str()),
        (
            Some("human:operator"),
            Some("operator"),
            Some("scheduler started with --unconfined-shell: programs run with the scheduler's own authority")
        )
    );
}

#[test]
fn killing_a_process_stops_its_running_program_and_everything_it_started() {
    let env = Env::new();
    let script = env.write(
        "play.toml",
        &runs(&["sh", "-c", "(sleep 3; echo late > bg.txt) & touch started; sleep 3; echo late > fg.txt"]),
    );
    env.ok(&["spawn", "coder", "--goal", "run long", "--grant", "exec shell:sh"]);
    let started = Instant::now();
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin("libos"))
        .current_dir(env.dir.path())
        .env("LIBOS_DB", env.db())
        .args(["run", "--script", s(&script)])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !env.path("started").exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "the program never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.ok(&["kill", "1"]);
    // Past the moment both would have written, neither did.
    std::thread::sleep(Duration::from_secs(4));
    let _ = run.kill();
    let _ = run.wait();
    assert!(!env.path("fg.txt").exists(), "the program outlived its kill");
    assert!(!env.path("bg.txt").exists(), "its background job outlived the kill");
}
