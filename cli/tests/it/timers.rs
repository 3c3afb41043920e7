//! `libos run --until-idle` and sleepers (issue 17, defect 2): a timer that
//! ran out before the run is woken, and what the run leaves parked is said,
//! with the bound it waited within.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

const SCRIPT: &str = r#"
[[agent]]
image = "orchestrator"
goal_contains = "nap"
[[agent.step]]
tool = "sleep"
args = { seconds = 1 }
[[agent.step]]
tool = "exit"
args = { result = "rested" }

[[agent]]
image = "orchestrator"
goal_contains = "hibernate"
[[agent.step]]
tool = "sleep"
args = { seconds = 3600 }
[[agent.step]]
tool = "exit"
args = { result = "spring" }
"#;

/// `libos run --until-idle ARGS`: its stderr, asserting success and an empty stdout.
fn run_until_idle(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["run", "--until-idle"];
    all.extend_from_slice(args);
    let out = env.cmd(&all).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
    String::from_utf8(out.stderr).unwrap()
}

/// The deadline pid `pid` sleeps until, as `ps --json` shows it.
fn timer(env: &Env, pid: usize) -> String {
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    let p = ps.as_array().unwrap().iter().find(|p| p["pid"] == pid).unwrap();
    p["state_detail"]["on"]["timer"].as_str().unwrap().to_string()
}

/// Regression: `run --until-idle` said "0 quanta run" and left a process
/// whose sleep had run out `waiting(timer)`.
#[test]
fn run_until_idle_wakes_timers_that_ran_out_and_says_what_it_leaves_parked() {
    let env = Env::new();
    let script = env.write("script.toml", SCRIPT);
    env.ok(&["spawn", "orchestrator", "--goal", "nap"]);
    env.ok(&["spawn", "orchestrator", "--goal", "hibernate"]);
    // Waiting for no timer, the run leaves both asleep and says so.
    let first = run_until_idle(&env, &["--script", s(&script), "--idle-wait", "0s"]);
    let (nap, hibernate) = (timer(&env, 1), timer(&env, 2));
    assert_eq!(
        first,
        format!(
            "libos: 2 quanta run, 0 cancelled, 0 processes finished\n\
             libos: stopped idle: nothing runnable and no sleeper due within 0s (--idle-wait)\n\
             libos: left parked: pid 1 waiting (timer: {nap}): past the bound, a later `libos run` wakes it\n\
             libos: left parked: pid 2 waiting (timer: {hibernate}): past the bound, a later `libos run` wakes it\n"
        )
    );
    let due = chrono::DateTime::parse_from_rfc3339(&nap).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while chrono::Utc::now() <= due {
        assert!(Instant::now() < deadline, "the clock never passed {nap}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The nap ran out meanwhile: the next run wakes it, and waits (by
    // default up to a minute) for nothing else.
    let second = run_until_idle(&env, &["--script", s(&script)]);
    assert_eq!(
        second,
        format!(
            "libos: 1 quanta run, 0 cancelled, 1 processes finished\n\
             libos: woke from sleep: pid 1\n\
             libos: stopped idle: nothing runnable and no sleeper due within 1m (--idle-wait)\n\
             libos: left parked: pid 2 waiting (timer: {hibernate}): past the bound, a later `libos run` wakes it\n"
        )
    );
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(ps[0]["state_detail"], serde_json::json!({"code": 0, "result": "rested"}));
    // A bound no sleep can reach is a usage error.
    let (code, err) = env.fails(&["run", "--until-idle", "--idle-wait", "8d"]);
    assert_eq!(code, 2);
    assert!(err.contains("idle wait `8d` is longer than a sleep can last (at most 7d)"), "{err}");
}
