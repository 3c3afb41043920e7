//! An MCP call parked on `ask`: `libos pending` (text and `--json`) and the
//! console's `GET /api/requests` show the tool's annotations, labelled as
//! the server's claims and escaped like any server text; approving runs
//! exactly the parked call, once. And `libos demo mcp` end to end.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::mcp::servers;
use crate::support::{Env, s};

/// A Python SDK server whose one tool has a hostile title (terminal
/// escapes: clear the screen, set the window title) and says it is
/// destructive and open-world; it notes each call in `calls.log`.
const WIPER: &str = r#"
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("wiper")

@server.tool(title="Wipe\x1b[2J\x1b]0;pwned\x07", annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=True))
def wipe(label: str) -> str:
    "Wipes a label."
    with open("calls.log", "a") as f:
        f.write("wipe " + label + "\n")
    return "wiped " + label

server.run()
"#;

const IMAGE: &str = r#"
name = "asker"
version = "1"
system_prompt = "You call MCP tools."
tools = ["exit"]
mcp = ["wiper"]
mcp_tools = ["everything/echo"]
grants = ["exec mcp:wiper/* ask", "exec mcp:everything/echo ask"]
"#;

const SCRIPT: &str = r#"
[[agent]]
image = "asker"
[[agent.step]]
tool = "everything__echo"
args = { message = "parked echo" }
[[agent.step]]
tool = "wiper__wipe"
args = { label = "the parked one" }
[[agent.step]]
tool = "exit"
args = { result = "both ran" }
"#;

fn env(servers: &servers::Servers, scripts: &std::path::Path) -> Env {
    let env = Env::new();
    let wiper = servers::script(scripts, "wiper.py", WIPER);
    env.write(
        "libos.toml",
        &format!(
            "image_dirs = [\"./images\"]\n\n[mcp.wiper]\ncommand = {}\nargs = [{}]\n\n[mcp.everything]\ncommand = {}\nargs = [\"stdio\"]\n",
            servers::lit(&servers.python()),
            servers::lit(&wiper),
            servers::lit(&servers.node_bin("mcp-server-everything")),
        ),
    );
    std::fs::create_dir(env.path("images")).unwrap();
    env.write("images/asker.toml", IMAGE);
    env
}

fn pending_json(env: &Env) -> Vec<Value> {
    serde_json::from_str(&env.ok(&["pending", "--json"])).unwrap()
}

/// The one open request's hints, as `--json` shows them.
fn hints_of(open: &[Value]) -> Value {
    assert_eq!(open.len(), 1, "{open:?}");
    open[0]["hints"].clone()
}

#[test]
fn a_parked_mcp_call_shows_the_servers_hints_escaped_and_approval_runs_exactly_it() {
    let Some(servers) = servers::servers() else { return };
    let scripts = tempfile::tempdir().unwrap();
    let env = env(servers, scripts.path());
    let script = env.write("script.toml", SCRIPT);
    env.ok(&["spawn", "asker", "--goal", "call what asks"]);

    // server-everything's echo says it is read-only, idempotent and closed-world.
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let open = pending_json(&env);
    assert_eq!(
        hints_of(&open),
        json!({
            "note": "the server's claims, not authority",
            "title": "Echo Tool",
            "read_only": true,
            "destructive": false,
            "idempotent": true,
            "open_world": false,
            "summary": "title \"Echo Tool\"; read-only, not destructive, idempotent, closed-world",
        })
    );
    let text = env.ok(&["pending"]);
    assert!(
        text.contains(
            "\n  hints (the server's claims, not authority): title \"Echo Tool\"; read-only, not destructive, idempotent, closed-world\n"
        ),
        "{text}"
    );
    env.ok(&["approve", &open[0]["id"].to_string()]);

    // The wiper's hostile title is escaped wherever it is shown.
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let open = pending_json(&env);
    let hints = hints_of(&open);
    assert_eq!(
        (&hints["title"], &hints["read_only"], &hints["destructive"], &hints["idempotent"], &hints["open_world"]),
        (&json!("Wipe\u{1b}[2J\u{1b}]0;pwned\u{7}"), &json!(false), &json!(true), &Value::Null, &json!(true))
    );
    let text = env.ok(&["pending"]);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
    assert!(
        text.contains(
            "\n  hints (the server's claims, not authority): title \"Wipe\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\"; may write, destructive, open-world\n"
        ),
        "{text}"
    );
    let raw = env.ok(&["pending", "--json"]);
    assert!(!raw.contains('\u{1b}') && !raw.contains('\u{7}'), "{raw:?}");

    // The console's API shows the same request with the same hints.
    let (mut serve, mut lines) = crate::serve::serve(&env, &[]);
    let console = lines.next().unwrap().unwrap();
    let addr = console.strip_prefix("libos console: http://").unwrap().split_once('/').unwrap().0.to_string();
    let (status, body) = crate::serve::http(&addr, "GET", "/api/requests", None);
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert_eq!(status, 200, "{body}");
    let api: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(api[0]["hints"], hints);
    assert_eq!(api[0]["tool"], "wiper__wipe");

    // Approval runs exactly the parked call, once.
    env.ok(&["approve", &open[0]["id"].to_string()]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let ps: Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(ps[0]["state_detail"]["result"], "both ran");
    assert_eq!(std::fs::read_to_string(env.path("calls.log")).unwrap(), "wipe the parked one\n");
    let logs = env.ok(&["logs", "1"]);
    assert!(logs.contains("Echo: parked echo"), "{logs}");
    assert!(logs.contains("wiped the parked one"), "{logs}");
    env.ok(&["audit", "verify"]);
}

#[test]
fn demo_mcp_runs_an_agent_on_server_everything_with_one_call_approved() {
    let Some(_) = servers::servers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("libos")
        .unwrap()
        .env_remove("LIBOS_DB")
        .env_remove("LIBOS_CONFIG")
        .args(["demo", "mcp", "--dir", s(dir.path()), "--cache", s(&servers::target_dir())])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    for expected in [
        "using @modelcontextprotocol/server-everything@2026.8.31 installed in ",
        "== libos pending",
        "  asks: exec mcp:everything/get-sum",
        "  hints (the server's claims, not authority): title \"Get Sum Tool\"",
        "approved request 1: pid 1 will run everything__get-sum as parked",
        "Echo: hello from libos",
        "The sum of 2 and 3 is 5.",
        "the server echoed and added 2 and 3",
        "== libos audit verify",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // Exactly one request: echo ran without one.
    assert_eq!(out.matches("== libos pending").count(), 1, "{out}");
}
