//! Crash recovery: a scheduler killed with SIGKILL mid-run, and another
//! started on the same store.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

const FIRST: &str = r#"
[[agent]]
image = "coder"
[[agent.step]]
tool = "shell"
args = { argv = ["sleep", "3"] }

[[agent]]
image = "assistant"
[[agent.step]]
tool = "now"
delay_ms = 86400000
"#;

const SECOND: &str = r#"
[[agent]]
image = "coder"
[[agent.step]]
tool = "exit"
args = { result = "recovered" }

[[agent]]
image = "assistant"
[[agent.step]]
tool = "exit"
args = { result = "thought again" }
"#;

fn audit(env: &Env) -> Vec<Value> {
    env.ok(&["audit", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_killed_scheduler_leaves_nothing_running_and_nothing_silently_re_run() {
    let env = Env::new();
    let first = env.write("first.toml", FIRST);
    let second = env.write("second.toml", SECOND);
    env.ok(&["spawn", "coder", "--goal", "run the slow job", "--grant", "exec shell:sleep"]);
    env.ok(&["spawn", "assistant", "--goal", "think slowly"]);
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin("libos"))
        .current_dir(env.dir.path())
        .env("LIBOS_DB", env.db())
        .args(["run", "--script", s(&first), "--lease-ttl", "1s"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the coder's program has started (its intent record is in
    // the log) and the assistant's model call is in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = audit(&env);
        let effect = records.iter().any(|r| r["action"] == "shell" && r["outcome"] == "pending");
        let leases = records.iter().filter(|r| r["action"] == "lease").count();
        if effect && leases == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the run never got going: {records:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap(); // SIGKILL: no shutdown, no release.
    run.wait().unwrap();
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    assert_eq!(ps.as_array().unwrap().iter().map(|p| p["state"].as_str().unwrap()).collect::<Vec<_>>(), ["running"; 2]);

    // A new scheduler takes both over once the dead one's leases lapse.
    env.ok(&["run", "--until-idle", "--script", s(&second), "--lease-ttl", "1s"]);
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    let ends: Vec<&Value> = ps.as_array().unwrap().iter().map(|p| &p["state_detail"]["result"]).collect();
    assert_eq!(ends, [&Value::from("recovered"), &Value::from("thought again")]);
    // The program that had started is reported unknown, never re-run.
    let logs = env.ok(&["logs", "1"]);
    assert!(
        logs.contains("result (unknown): outcome unknown: the scheduler running it stopped after `shell` started"),
        "{logs}"
    );
    let shells = audit(&env).iter().filter(|r| r["action"] == "shell" && r["kind"] == "tool").count();
    assert_eq!(shells, 0, "the shell call was never committed as run");
    env.ok(&["audit", "verify"]);
}
