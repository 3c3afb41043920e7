//! Issue 17's conventions for what commands print: `--json` on every
//! command that prints, with the HTTP API's field names; `ps` filters and
//! `-q`; empty listings that print their header; `logs --follow`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::serve::{http, serve};
use crate::support::{Env, s};

/// An assistant that looks at the time, then deletes a file (which asks),
/// then exits; a worker that exits at once.
const SCRIPT: &str = r#"
[[agent]]
image = "assistant"

[[agent.step]]
say = "What time is it?"
tool = "now"

[[agent.step]]
tool = "delete_file"
args = { path = "old.txt" }

[[agent.step]]
tool = "exit"
args = { result = "tidied up" }
"#;

fn json(env: &Env, args: &[&str]) -> Value {
    let out = env.ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("libos {args:?}: not JSON ({e}): {out}"))
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// What varies from run to run.
macro_rules! stable {
    ($name:literal, $value:expr) => {
        insta::with_settings!({ sort_maps => true }, {
            insta::assert_json_snapshot!($name, $value, {
                ".**.created_at" => "[time]", ".**.updated_at" => "[time]", ".**.sent_at" => "[time]",
                ".**.image_digest" => "[digest]", ".**.workspace" => "[dir]", ".**.wall_time" => "[secs]",
                ".**.args_sha256" => "[sha]", ".**.store" => "[store]"
            });
        })
    };
}

#[test]
fn every_command_that_prints_has_json() {
    let env = Env::new();
    env.write("old.txt", "stale\n");
    let script = env.write("s.toml", SCRIPT);
    stable!("init_json", json(&env, &["init", "--json"]));
    stable!("spawn_json", json(&env, &["spawn", "assistant", "--goal", "tidy up", "--json"]));
    stable!("run_json", json(&env, &["run", "--until-idle", "--script", s(&script), "--json"]));
    stable!("approve_json", json(&env, &["approve", "1", "--always", "--json"]));
    stable!("renice_json", json(&env, &["renice", "1", "5", "--json"]));
    stable!("pause_json", json(&env, &["pause", "1", "--json"]));
    stable!("resume_json", json(&env, &["resume", "1", "--json"]));
    stable!("send_json", json(&env, &["send", "1", "hello", "--json"]));
    stable!("grant_json", json(&env, &["grant", "1", "read fs:docs/** uses=2", "--json"]));
    stable!("revoke_json", json(&env, &["revoke", "4", "--json"]));
    stable!("kill_json", json(&env, &["kill", "1", "--json"]));
    let images = json(&env, &["images", "--json"]);
    let names: Vec<&str> = images.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["assistant", "coder", "orchestrator", "reviewer", "worker"]);
    stable!("images_json_worker", &images[4]);
    let coder = json(&env, &["images", "show", "coder", "--json"]);
    assert_eq!(coder["name"], "coder");
    assert!(coder["source"].as_str().unwrap().contains("name = \"coder\""));

    // A second process, to deny and to answer a question of.
    let ask = env.write(
        "ask.toml",
        "[[agent]]\nimage = \"assistant\"\n[[agent.step]]\ntool = \"ask_human\"\nargs = { question = \"Which?\" }\n\
         [[agent.step]]\ntool = \"delete_file\"\nargs = { path = \"old.txt\" }\n",
    );
    env.ok(&["spawn", "assistant", "--goal", "ask first"]);
    env.ok(&["run", "--until-idle", "--script", s(&ask)]);
    stable!("answer_json", json(&env, &["answer", "2", "the old one", "--json"]));
    env.ok(&["run", "--until-idle", "--script", s(&ask)]);
    stable!("deny_json", json(&env, &["deny", "3", "--reason", "keep it", "--json"]));
}

/// The CLI's answers to actions have the API's field names.
#[test]
fn action_json_has_the_field_names_of_the_http_api() {
    let env = Env::new();
    env.ok(&["spawn", "assistant", "--goal", "one"]);
    env.ok(&["spawn", "assistant", "--goal", "two"]);
    let (mut server, mut lines) = serve(&env, &[]);
    let url = lines.next().unwrap().unwrap();
    let (addr, token) = url.strip_prefix("libos console: http://").unwrap().split_once("/#token=").unwrap();
    let api = |path: &str| {
        let (status, body) = http(addr, "POST", path, Some(token));
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(keys(&json(&env, &["pause", "1", "--json"])), keys(&api("/api/processes/2/pause")));
    assert_eq!(keys(&json(&env, &["resume", "1", "--json"])), keys(&api("/api/processes/2/resume")));
    assert_eq!(keys(&json(&env, &["kill", "1", "--json"])), keys(&api("/api/processes/2/kill")));
    let (_, list) = http(addr, "GET", "/api/processes?all=true", None);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(keys(&json(&env, &["spawn", "assistant", "--goal", "three", "--json"])), keys(&list[0]));
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn ps_filters_by_state_image_and_parent_and_q_prints_only_pids() {
    let env = Env::new();
    let script = env.write(
        "tree.toml",
        "[[agent]]\nimage = \"orchestrator\"\n[[agent.step]]\ntool = \"spawn\"\n\
         args = { image = \"worker\", goal = \"first\" }\n[[agent.step]]\ntool = \"spawn\"\n\
         args = { image = \"worker\", goal = \"second\" }\n[[agent.step]]\ntool = \"receive\"\nargs = {}\n\n\
         [[agent]]\nimage = \"worker\"\ngoal_contains = \"first\"\n[[agent.step]]\ntool = \"exit\"\n\
         args = { result = \"done\" }\n\n[[agent]]\nimage = \"worker\"\n[[agent.step]]\ntool = \"receive\"\nargs = {}\n",
    );
    env.ok(&["spawn", "orchestrator", "--goal", "coordinate"]);
    env.ok(&["spawn", "assistant", "--goal", "idle"]);
    env.ok(&["pause", "2"]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let q = |args: &[&str]| env.ok(&[&["ps", "-q"], args].concat());
    assert_eq!(q(&[]), "1\n2\n4\n", "live ones");
    assert_eq!(q(&["--all"]), "1\n2\n3\n4\n");
    assert_eq!(q(&["--state", "exited"]), "3\n", "an ended state needs no --all");
    assert_eq!(q(&["--state", "waiting,paused"]), "1\n2\n4\n");
    assert_eq!(q(&["--state", "paused", "--state", "exited"]), "2\n3\n");
    assert_eq!(q(&["--image", "worker"]), "4\n");
    assert_eq!(q(&["--image", "worker", "--all"]), "3\n4\n");
    assert_eq!(q(&["--parent", "1", "--all"]), "3\n4\n");
    assert_eq!(q(&["--parent", "2"]), "");
    let table = env.ok(&["ps", "--image", "worker", "--all", "--tree"]);
    let pids: Vec<&str> = table.lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(pids, ["3", "4"]);
    let listed: Value = serde_json::from_str(&env.ok(&["ps", "--state", "paused", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().iter().map(|p| p["pid"].clone()).collect::<Vec<_>>(), [Value::from(2)]);
    let (code, err) = env.fails(&["ps", "--state", "asleep"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("libos: error: invalid value 'asleep' for '--state <STATE>'"), "{err}");
    let (code, err) = env.fails(&["ps", "--parent", "x"]);
    assert_eq!((code, err.as_str()), (2, "libos: error: invalid pid `x`: expected a positive integer\n"));
    let (code, _) = env.fails(&["ps", "-q", "--json"]);
    assert_eq!(code, 2);
}

#[test]
fn an_empty_listing_prints_its_header() {
    let env = Env::new();
    env.ok(&["init"]);
    env.ok(&["spawn", "worker", "--goal", "nothing yet"]);
    let empty = |args: &[&str]| env.ok(args);
    assert_eq!(empty(&["ps", "--state", "failed"]), "PID  PPID  IMAGE  STATE  QUANTA  TOKENS  AGE  GOAL\n");
    assert_eq!(empty(&["pending"]), "ID  PID  IMAGE  TOOL  ASKS  AGE\n");
    assert_eq!(empty(&["inbox", "1"]), "ID  FROM  KIND  CHANNEL  STATUS  AGE  BODY\n");
    assert_eq!(empty(&["memory", "1"]), "OID  OBJECT  KIND  VERSION  BYTES  RIGHTS  PINNED  FROM\n");
    assert_eq!(empty(&["caps", "1"]), "GRANT  RIGHTS  RESOURCE  EFFECT  USES  EXPIRES  DELEGABLE  FROM  BY  STATUS\n");
    assert_eq!(empty(&["audit", "--outcome", "denied"]), "SEQ  TIME  ACTOR  KIND  ACTION  OUTCOME  DETAIL\n");
    let out = env.cmd(&["mcp", "list"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "NAME  TRANSPORT  RUNS  TIMEOUT  IDLE  SCOPE  STATE\n");
}

/// A child killed when the test ends, however it ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines a child prints, as they come.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Reads lines until one equal to `wanted`; all of them, that one included.
fn until(rx: &mpsc::Receiver<String>, wanted: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        // A bound for a broken follow, not a timing assertion.
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no {wanted:?} in {seen:#?}"));
        let done = line == wanted;
        seen.push(line);
        if done {
            return seen;
        }
    }
}

#[test]
fn logs_follow_prints_each_quantum_as_it_ends_until_the_process_ends() {
    let env = Env::new();
    env.write("old.txt", "stale\n");
    let script = env.write("s.toml", SCRIPT);
    env.ok(&["spawn", "assistant", "--goal", "tidy up"]);
    let mut follow = Reaped(env.std_cmd(&["logs", "1", "--follow"]).stdout(Stdio::piped()).spawn().unwrap());
    let rx = lines_of(&mut follow.0);
    let mut seen = until(&rx, "pid 1 · assistant · runnable · goal: tidy up");
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    seen.extend(until(&rx, "now waiting (human: request 1)"));
    env.ok(&["approve", "1"]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    seen.extend(until(&rx, "exited(0): tidied up"));
    assert!(follow.0.wait().unwrap().success(), "it stops by itself once the process ended");
    let text = seen.join("\n");
    insta::with_settings!({ filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", "[time]"), (r"\d+ ms", "[ms] ms"), (r"~\d+/\d+", "~[in]/[out]"),
        (r"\(unix \d+\)", "(unix [secs])"),
    ]}, {
        insta::assert_snapshot!("logs_follow", text);
    });
    // What was followed is what `logs` shows afterwards.
    let after = env.ok(&["logs", "1"]);
    for line in seen.iter().filter(|l| l.starts_with("  ")) {
        assert!(after.contains(line.as_str()), "{line:?} not in\n{after}");
    }
}

#[test]
fn logs_follow_stops_on_ctrl_c_and_follows_as_json_lines() {
    let env = Env::new();
    env.ok(&["spawn", "assistant", "--goal", "wait for me"]);
    let mut follow = Reaped(env.std_cmd(&["logs", "1", "--follow"]).stdout(Stdio::piped()).spawn().unwrap());
    let rx = lines_of(&mut follow.0);
    until(&rx, "pid 1 · assistant · runnable · goal: wait for me");
    let pid = follow.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert!(follow.0.wait().unwrap().success(), "Ctrl-C ends a follow cleanly");

    let script =
        env.write("s.toml", &SCRIPT.replace("tool = \"delete_file\"\nargs = { path = \"old.txt\" }", "tool = \"now\""));
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let out = env.ok(&["logs", "1", "--follow", "--json"]);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let quanta: Vec<&Value> = lines.iter().map(|l| &l["quantum"]).collect();
    assert_eq!(quanta, [&Value::from(1), &Value::from(2), &Value::from(3), &Value::Null]);
    assert_eq!(lines[3]["process"]["state_detail"]["result"], "tidied up");
    assert_eq!(lines[0]["tool_calls"][0]["tool"], "now");
}
