//! `libos mcp list | tools | call`: an operator checks the servers of
//! libos.toml by hand, with real servers run in the sandbox.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::{Env, s};

/// The MCP crate's installer of real servers (under `target/`, once, locked).
#[path = "../../../mcp/tests/it/support.rs"]
#[allow(dead_code)]
pub mod servers;

fn lit(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// An env whose libos.toml declares server-everything, server-filesystem and an HTTP server.
fn env_with_servers(servers: &servers::Servers) -> Env {
    let env = Env::new();
    env.write(
        "libos.toml",
        &format!(
            "[mcp.everything]\ncommand = {}\nargs = [\"stdio\"]\ntimeout_s = 30\n\n\
             [mcp.fs]\ncommand = {}\nargs = [\".\"]\n\n\
             [mcp.remote]\nurl = \"http://127.0.0.1:9/mcp\"\nheaders = {{ Authorization = \"env:REMOTE_TOKEN\" }}\nscope = \"process\"\n",
            lit(&servers.node_bin("mcp-server-everything")),
            lit(&servers.node_bin("mcp-server-filesystem")),
        ),
    );
    env
}

#[test]
fn mcp_list_shows_each_server_its_transport_and_limits() {
    let Some(servers) = servers::servers() else { return };
    let env = env_with_servers(servers);
    let listed: Value = serde_json::from_str(&env.ok(&["mcp", "list", "--json"])).unwrap();
    let state = "configured (started on demand)";
    assert_eq!(
        listed,
        json!([
            {"name": "everything", "transport": "stdio", "target": format!("{} stdio", servers.node_bin("mcp-server-everything")),
             "timeout_s": 30, "idle_s": 300, "scope": "workspace", "state": state},
            {"name": "fs", "transport": "stdio", "target": format!("{} .", servers.node_bin("mcp-server-filesystem")),
             "timeout_s": 60, "idle_s": 300, "scope": "workspace", "state": state},
            {"name": "remote", "transport": "http", "target": "http://127.0.0.1:9/mcp",
             "timeout_s": 60, "idle_s": 300, "scope": "process", "state": state},
        ])
    );
    let checked: Value = serde_json::from_str(&env.ok(&["mcp", "list", "--check", "--json"])).unwrap();
    let states: Vec<&str> = checked.as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(
        states,
        vec![
            "ok: 13 tools",
            "ok: 14 tools",
            "failed: mcp server `remote` could not be started: environment variable REMOTE_TOKEN (for mcp.remote.headers.Authorization) is not set",
        ]
    );
}

#[test]
fn mcp_tools_shows_schemas_and_annotations_and_json_is_mcps_own_shape() {
    let Some(servers) = servers::servers() else { return };
    let env = env_with_servers(servers);
    let tools: Value = serde_json::from_str(&env.ok(&["mcp", "tools", "everything", "--json"])).unwrap();
    let sum = tools.as_array().unwrap().iter().find(|t| t["name"] == "get-sum").unwrap();
    assert_eq!(
        sum,
        &json!({
            "name": "get-sum",
            "title": "Get Sum Tool",
            "description": "Returns the sum of two numbers",
            "inputSchema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "a": {"type": "number", "description": "First number"},
                    "b": {"type": "number", "description": "Second number"},
                },
                "required": ["a", "b"],
            },
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false},
        })
    );
    let text = env.ok(&["mcp", "tools", "everything"]);
    let block: Vec<&str> = text.split("\n\n").find(|b| b.starts_with("everything__get-sum")).unwrap().lines().collect();
    assert_eq!(
        block,
        vec![
            "everything__get-sum (Get Sum Tool)",
            "  Returns the sum of two numbers",
            "  hints (not authority): readOnly, destructive=false, idempotent, openWorld=false",
            "  input: {\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"properties\":{\"a\":{\"description\":\"First number\",\"type\":\"number\"},\"b\":{\"description\":\"Second number\",\"type\":\"number\"}},\"required\":[\"a\",\"b\"],\"type\":\"object\"}",
        ]
    );
}

#[test]
fn mcp_call_runs_the_tool_sandboxed_in_the_workspace_and_escapes_what_it_prints() {
    let Some(servers) = servers::servers() else { return };
    let env = env_with_servers(servers);
    assert_eq!(env.ok(&["mcp", "call", "everything", "echo", r#"{"message": "hi\u001b[2J"}"#]), "Echo: hi\\u{1b}[2J\n");
    let called: Value =
        serde_json::from_str(&env.ok(&["mcp", "call", "everything", "get-sum", r#"{"a": 2, "b": 3}"#, "--json"]))
            .unwrap();
    assert_eq!(called, json!({"text": "The sum of 2 and 3 is 5.", "structured": null, "is_error": false}));

    // The server runs in the workspace given (its "." is that directory), and may write there.
    let ws = env.path("ws");
    std::fs::create_dir(&ws).unwrap();
    let note = ws.join("note.txt");
    let write = json!({"path": s(&note), "content": "from the server"}).to_string();
    env.ok(&["mcp", "call", "fs", "write_file", &write, "--workspace", s(&ws)]);
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "from the server");
}

#[test]
fn mcp_commands_fail_with_one_line_and_a_documented_code() {
    let Some(servers) = servers::servers() else { return };
    let env = env_with_servers(servers);
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["mcp", "tools", "nope"],
            3,
            "libos: error: no MCP server `nope` is configured (add [mcp.nope] to libos.toml)",
        ),
        (&["mcp", "call", "everything", "echo", "[1]"], 2, "libos: error: ARGS must be a JSON object"),
        (
            &["mcp", "call", "everything", "echo", "{"],
            2,
            "libos: error: ARGS is not JSON: EOF while parsing an object at line 1 column 1",
        ),
        (
            &["mcp", "call", "everything", "nope"],
            1,
            "libos: error: `nope` on mcp server `everything` reported an error (isError)",
        ),
    ];
    for (args, code, message) in cases {
        let (got, err) = env.fails(args);
        assert_eq!((got, err.trim_end()), (code, message), "{args:?}");
    }
    env.write("libos.toml", "[mcp.a__b]\ncommand = \"x\"\n");
    let (code, err) = env.fails(&["mcp", "list"]);
    assert_eq!(
        (code, err.trim_end()),
        (
            1,
            "libos: error: config libos.toml: mcp.a__b: server name `a__b` must not contain `__` (it separates server and tool)"
        )
    );
}
