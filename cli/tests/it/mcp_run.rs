//! MCP tools in `libos` runs: images name servers, `libos images show`
//! lists their tools with the servers' hints, a SIGKILLed `libos run`
//! leaves an MCP call `unknown` that the next run never re-runs, and
//! `libos replay` answers MCP calls from the record.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Env, s};

use crate::mcp::servers;

/// A Python SDK server that notes each call in `calls.log` in its workspace.
const SLOW: &str = r#"
import time
from mcp.server.mcpserver import MCPServer

server = MCPServer("slow")

def seen(line):
    with open("calls.log", "a") as f:
        f.write(line + "\n")

@server.tool()
def slow(label: str) -> str:
    "Takes a minute."
    seen("slow " + label)
    time.sleep(60)
    return "slow done"

@server.tool()
def quick(label: str) -> str:
    "Answers at once."
    seen("quick " + label)
    return "quick " + label

server.run()
"#;

const IMAGE: &str = r#"
name = "slowpoke"
version = "1"
system_prompt = "You call slow tools."
tools = ["exit"]
mcp = ["slow"]
mcp_tools = ["everything/echo"]
grants = ["exec mcp:slow/*", "exec mcp:everything/echo"]
"#;

const FIRST: &str = r#"
[[agent]]
image = "slowpoke"
[[agent.step]]
tool = "slow__quick"
args = { label = "one" }
[[agent.step]]
tool = "slow__slow"
args = { label = "two" }
"#;

// Steps are played by the process's recorded model calls: one was (the
// killed quantum's was never committed).
const SECOND: &str = r#"
[[agent]]
image = "slowpoke"
[[agent.step]]
tool = "exit"
args = { result = "not played" }
[[agent.step]]
tool = "everything__echo"
args = { message = "after the crash" }
[[agent.step]]
tool = "exit"
args = { result = "recovered" }
"#;

fn env(servers: &servers::Servers, scripts: &std::path::Path) -> Env {
    let env = Env::new();
    let slow = servers::script(scripts, "slow.py", SLOW);
    env.write(
        "libos.toml",
        &format!(
            "image_dirs = [\"./images\"]\n\n[mcp.slow]\ncommand = {}\nargs = [{}]\n\n[mcp.everything]\ncommand = {}\nargs = [\"stdio\"]\n",
            servers::lit(&servers.python()),
            servers::lit(&slow),
            servers::lit(&servers.node_bin("mcp-server-everything")),
        ),
    );
    std::fs::create_dir(env.path("images")).unwrap();
    env.write("images/slowpoke.toml", IMAGE);
    env
}

fn audit(env: &Env) -> Vec<Value> {
    env.ok(&["audit", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn images_show_lists_an_images_mcp_tools_with_their_needs_and_the_servers_hints() {
    let Some(servers) = servers::servers() else { return };
    let scripts = tempfile::tempdir().unwrap();
    let env = env(servers, scripts.path());
    let out = env.ok(&["images", "show", "slowpoke"]);
    assert!(out.contains("tools:   exit, slow__slow, slow__quick, everything__echo\n"), "{out}");
    assert!(out.contains("mcp:     slow, everything/echo\n"), "{out}");
    assert!(out.contains("MCP tools (HINTS are the server's own claims, shown for people; grants decide):"), "{out}");
    let echo = out.lines().find(|l| l.contains("everything__echo") && l.contains("exec mcp:everything/echo"));
    assert!(echo.is_some(), "{out}");
    // An image naming an undeclared server is an error naming both.
    env.write("images/lost.toml", &IMAGE.replace("slowpoke", "lost").replace("mcp = [\"slow\"]", "mcp = [\"git\"]"));
    let (code, err) = env.fails(&["images"]);
    assert_eq!(code, 1);
    assert!(err.contains("image `lost` names mcp server `git`, which the configuration does not declare"), "{err}");
}

#[test]
fn a_sigkilled_run_leaves_its_mcp_call_unknown_and_the_next_run_never_sends_it_again() {
    let Some(servers) = servers::servers() else { return };
    let scripts = tempfile::tempdir().unwrap();
    let env = env(servers, scripts.path());
    let first = env.write("first.toml", FIRST);
    let second = env.write("second.toml", SECOND);
    env.ok(&["spawn", "slowpoke", "--goal", "call the slow tool"]);
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin("libos"))
        .current_dir(env.dir.path())
        .env("LIBOS_DB", env.db())
        .args(["run", "--script", s(&first), "--lease-ttl", "1s"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the server has the slow call (its intent record is written first).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(env.path("calls.log")).unwrap_or_default().contains("slow two") {
        assert!(Instant::now() < deadline, "the slow call never reached the server: {:?}", audit(&env));
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap(); // SIGKILL: no shutdown, no release.
    run.wait().unwrap();

    env.ok(&["run", "--until-idle", "--script", s(&second), "--lease-ttl", "1s"]);
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(ps[0]["state_detail"]["result"], "recovered");
    let logs = env.ok(&["logs", "1"]);
    assert!(
        logs.contains("result (unknown): outcome unknown: the scheduler running it stopped after `slow__slow` started"),
        "{logs}"
    );
    assert!(logs.contains("Echo: after the crash"), "{logs}");
    // The server got each call once: the unknown one was never sent again.
    assert_eq!(std::fs::read_to_string(env.path("calls.log")).unwrap(), "quick one\nslow two\n");
    env.ok(&["audit", "verify"]);

    // A replay answers the MCP calls from the record: the server sees nothing new.
    let replayed = env.ok(&["replay", "1"]);
    assert!(replayed.contains("the replay matches the original, call for call"), "{replayed}");
    assert_eq!(std::fs::read_to_string(env.path("calls.log")).unwrap(), "quick one\nslow two\n");
}
