//! The crash matrix: a multi-agent workload (spawns, messages, approvals,
//! programs with side effects) run by `libos run`, killed with SIGKILL at
//! many points and restarted each time, then checked for what must survive.
//!
//! CI kills it 50 times; `LIBOS_CRASH_POINTS=500` kills it more.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

/// One lead (an orchestrator with a worker child, a write behind approval
/// and two messages to receive) and one effect process (a coder running two
/// programs, each behind approval, that append a line to `effects.log`).
fn script_for(k: usize) -> String {
    format!(
        r#"
[[agent]]
image = "orchestrator"
goal_contains = "lead {k};"
[[agent.step]]
tool = "spawn"
args = {{ image = "worker", goal = "helper of lead {k};" }}
[[agent.step]]
tool = "write_file"
args = {{ path = "lead-{k}.txt", content = "written by lead {k}" }}
[[agent.step]]
tool = "receive"
args = {{}}
[[agent.step]]
tool = "receive"
args = {{}}
[[agent.step]]
tool = "wait"
args = {{ pid = "any" }}
[[agent.step]]
tool = "exit"
args = {{ result = "lead {k} done" }}

[[agent]]
image = "worker"
goal_contains = "helper of lead {k};"
[[agent.step]]
tool = "send"
args = {{ to = "parent", body = "report from helper {k}" }}
[[agent.step]]
tool = "exit"
args = {{ result = "helped" }}

[[agent]]
image = "coder"
goal_contains = "effects {k};"
[[agent.step]]
tool = "shell"
args = {{ argv = ["sh", "-c", "echo effect-{k}-a >> effects.log; sleep 0.1"] }}
[[agent.step]]
tool = "shell"
args = {{ argv = ["sh", "-c", "echo effect-{k}-b >> effects.log; sleep 0.1"] }}
[[agent.step]]
tool = "exit"
args = {{ result = "effects {k} done" }}
"#
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// What the harness was told succeeded: each must be in the store at the end.
#[derive(Default)]
struct Acknowledged {
    spawned: Vec<i64>,
    /// Message id -> recipient.
    sent: BTreeMap<i64, i64>,
    approved: BTreeSet<i64>,
}

struct Harness<'a> {
    env: &'a Env,
    script: std::path::PathBuf,
    ack: Acknowledged,
}

impl Harness<'_> {
    fn start(&self) -> Child {
        Command::new(assert_cmd::cargo::cargo_bin("libos"))
            .current_dir(self.env.dir.path())
            .env("LIBOS_DB", self.env.db())
            .args(["run", "--script", s(&self.script), "--lease-ttl", "300ms", "--poll-ms", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn spawn_work(&mut self, k: usize) {
        let lead = self.env.ok(&["spawn", "orchestrator", "--goal", &format!("lead {k};")]);
        let lead: i64 = lead.trim().parse().unwrap();
        let effects = self.env.ok(&["spawn", "coder", "--goal", &format!("effects {k};")]);
        self.ack.spawned.extend([lead, effects.trim().parse::<i64>().unwrap()]);
        let sent = self.env.ok(&["send", &lead.to_string(), &format!("note {k} from the operator")]);
        // "sent message ID to pid PID"
        let id: i64 = sent.split_whitespace().nth(2).unwrap().parse().unwrap();
        self.ack.sent.insert(id, lead);
    }

    fn pending(&self) -> BTreeMap<i64, Value> {
        let out: Value = serde_json::from_str(&self.env.ok(&["pending", "--json"])).unwrap();
        out.as_array().unwrap().iter().map(|r| (r["id"].as_i64().unwrap(), r.clone())).collect()
    }

    fn approve_all(&mut self) {
        for id in self.pending().into_keys() {
            let out = self.env.cmd(&["approve", &id.to_string()]).output().unwrap();
            if out.status.success() {
                self.ack.approved.insert(id);
            }
        }
    }
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL: no shutdown, no release of leases.
    child.wait().unwrap();
}

#[test]
fn killed_at_many_points_nothing_acknowledged_is_lost_and_nothing_runs_twice() {
    let points: usize = std::env::var("LIBOS_CRASH_POINTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let leads = points.div_ceil(4);
    let env = Env::new();
    let script = env.write("crash.toml", &(1..=leads).map(script_for).collect::<String>());
    let mut h = Harness { env: &env, script, ack: Acknowledged::default() };
    env.ok(&["init"]);

    let mut spawned = 0;
    let mut mid_quantum = 0;
    for i in 0..points {
        if i % 4 == 0 {
            spawned += 1;
            h.spawn_work(spawned);
        }
        let before = h.pending();
        let run = h.start();
        // Kill points spread over the run: at start-up, mid-quantum,
        // mid-program, during and right after an operator's approval.
        std::thread::sleep(Duration::from_millis((i as u64 * 37) % 120));
        h.approve_all();
        std::thread::sleep(Duration::from_millis((i as u64 * 53) % 150));
        kill(run);
        let ps: Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
        mid_quantum += ps.as_array().unwrap().iter().any(|p| p["state"] == "running") as usize;
        // A crash loses no parked request and changes none: what was
        // pending and not approved here is still pending, with the same call.
        let after = h.pending();
        for (id, request) in &before {
            if !h.ack.approved.contains(id) {
                assert_eq!(after.get(id), Some(request), "request {id} after kill point {i}");
            }
        }
    }

    // Let it finish: run until idle, approving whatever parks.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        env.ok(&["run", "--until-idle", "--script", s(&h.script), "--lease-ttl", "300ms"]);
        h.approve_all();
        let ps: Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
        if ps.as_array().unwrap().is_empty() && h.pending().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the workload never finished: {ps}");
    }

    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    let ps = ps.as_array().unwrap();
    // Every process ends, and ends well: a lead exits once its worker
    // reported and its two messages arrived; no process failed.
    let states: BTreeMap<String, usize> = ps.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p["state"].as_str().unwrap().to_string()).or_default() += 1;
        m
    });
    assert_eq!(states, BTreeMap::from([("exited".to_string(), 3 * spawned)]));
    let pids: BTreeSet<i64> = ps.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    for pid in &h.ack.spawned {
        assert!(pids.contains(pid), "spawned pid {pid} is gone");
    }

    let audit = json_lines(&env.ok(&["audit", "--json"]));
    // Every approval the CLI acknowledged is in the log, exactly once (a
    // refused decision is audited too, as an error).
    for id in &h.ack.approved {
        let n = audit
            .iter()
            .filter(|r| r["action"] == "approve" && r["outcome"] == "ok" && r["args"]["request"] == *id)
            .count();
        assert_eq!(n, 1, "approval of request {id}");
    }

    // Messages: every acknowledged one exists, and every message is
    // delivered exactly once (each lead receives its note and its report).
    let mut delivered: BTreeMap<i64, usize> = BTreeMap::new();
    for p in ps {
        let pid = p["pid"].as_i64().unwrap().to_string();
        let logs: Value = serde_json::from_str(&env.ok(&["logs", &pid, "--json"])).unwrap();
        for q in logs["quanta"].as_array().unwrap() {
            for call in q["tool_calls"].as_array().unwrap() {
                if call["tool"] == "receive" && call["outcome"] == "ok" {
                    // "message ID from SENDER: BODY"
                    let result = call["result"].as_str().unwrap();
                    let id = result.split_whitespace().nth(1).unwrap().parse().unwrap();
                    *delivered.entry(id).or_default() += 1;
                }
            }
        }
    }
    for (id, to) in &h.ack.sent {
        let inbox: Value = serde_json::from_str(&env.ok(&["inbox", &to.to_string(), "--json"])).unwrap();
        assert!(inbox.as_array().unwrap().iter().any(|m| m["id"] == *id), "message {id} to pid {to} is gone");
    }
    assert_eq!(delivered.len(), 2 * spawned, "{delivered:?}");
    assert!(delivered.values().all(|n| *n == 1), "a message was delivered twice: {delivered:?}");

    // No program ran twice: each line at most once. A program cut off by a
    // kill is reported unknown and not run again, so a line may be missing
    // only where its call's outcome is unknown.
    let effects = std::fs::read_to_string(env.path("effects.log")).unwrap_or_default();
    let mut lines: BTreeMap<&str, usize> = BTreeMap::new();
    for line in effects.lines() {
        *lines.entry(line).or_default() += 1;
    }
    assert!(lines.values().all(|n| *n == 1), "a program ran twice: {lines:?}");
    let unknown = audit.iter().filter(|r| r["action"] == "shell" && r["outcome"] == "unknown").count();
    let ran = audit.iter().filter(|r| r["action"] == "shell" && r["kind"] == "tool" && r["outcome"] == "ok").count();
    assert!(ran <= lines.len() && lines.len() <= ran + unknown, "{ran} ok, {unknown} unknown, lines {lines:?}");
    assert_eq!(ran + unknown, 2 * spawned, "each program either ran once or is reported unknown");

    env.ok(&["audit", "verify"]);
    println!(
        "crash matrix: {points} SIGKILLs ({mid_quantum} with quanta in flight), {} processes, {} approvals, {} messages, {} programs ({unknown} cut off)",
        ps.len(),
        h.ack.approved.len(),
        delivered.len(),
        ran + unknown
    );
}
