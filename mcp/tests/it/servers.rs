//! Real servers, run in the sandbox: listing, calling, crashing, hanging,
//! a second stdio server, streamable HTTP, and the sandbox holding.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use libos_mcp::{CallOutput, Hub, McpError, Target};
use pretty_assertions::assert_eq;
use serde_json::{Map, Value, json};

use crate::support::{self, lit, script};

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn call(hub: &Hub, ws: &std::path::Path, server: &str, tool: &str, a: Value) -> Result<CallOutput, McpError> {
    hub.call(Target { server, workspace: ws, pid: 1 }, tool, args(a), std::future::pending()).await
}

fn everything(servers: &support::Servers) -> String {
    format!("[mcp.everything]\ncommand = {}\nargs = [\"stdio\"]\n", lit(&servers.node_bin("mcp-server-everything")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_lists_its_tools_with_schemas_and_answers_a_call() {
    let Some(servers) = support::servers() else { return };
    let ws = tempfile::tempdir().unwrap();
    let hub = support::hub(&everything(servers), &[]);
    let target = Target { server: "everything", workspace: ws.path(), pid: 1 };
    let tools = hub.tools(target).await.unwrap();
    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    assert_eq!(
        echo.to_json(),
        json!({
            "name": "echo",
            "title": "Echo Tool",
            "description": "Echoes back the input string",
            "inputSchema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"message": {"type": "string", "description": "Message to echo"}},
                "required": ["message"],
            },
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false},
        })
    );
    assert_eq!(echo.annotations.hints(), vec!["readOnly", "destructive=false", "idempotent", "openWorld=false"]);
    assert!(tools.iter().any(|t| t.name == "get-sum"), "{:?}", tools.iter().map(|t| &t.name).collect::<Vec<_>>());
    let out = call(&hub, ws.path(), "everything", "echo", json!({"message": "hello"})).await.unwrap();
    assert_eq!(out, CallOutput { text: "Echo: hello".to_string(), structured: None, is_error: false });
    let sum = call(&hub, ws.path(), "everything", "get-sum", json!({"a": 2, "b": 3})).await.unwrap();
    assert_eq!(sum.text, "The sum of 2 and 3 is 5.");
    let image = call(&hub, ws.path(), "everything", "get-tiny-image", json!({})).await.unwrap();
    assert!(image.text.contains("[image: image/png, "), "{}", image.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_result_is_cut_like_other_tool_results() {
    let Some(servers) = support::servers() else { return };
    let ws = tempfile::tempdir().unwrap();
    let hub = support::hub(&everything(servers), &[]);
    let big = "x".repeat(100_000);
    let out = call(&hub, ws.path(), "everything", "echo", json!({"message": big})).await.unwrap();
    let kept = libos_mcp::MAX_RESULT_BYTES;
    assert_eq!(
        out.text,
        format!("Echo: {}\n[... result cut: 100006 bytes, the first {kept} shown]", "x".repeat(kept - "Echo: ".len()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_is_stopped_and_started_again_when_called() {
    let Some(servers) = support::servers() else { return };
    let (ws, scripts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let toml = format!("{}idle_s = 1\n", flaky(servers, scripts.path()));
    let hub = support::hub(&toml, &[]);
    assert_eq!(call(&hub, ws.path(), "flaky", "ping", json!({})).await.unwrap().text, "pong");
    assert_eq!(hub.state("flaky").await, libos_mcp::ServerState::Running(1));
    // Waits for the stop (bounded), whenever it comes.
    let mut stopped = false;
    for _ in 0..600 {
        if hub.state("flaky").await == libos_mcp::ServerState::Stopped {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stopped, "the idle server was not stopped");
    assert_eq!(call(&hub, ws.path(), "flaky", "ping", json!({})).await.unwrap().text, "pong");
}

const FLAKY: &str = r#"
import os, sys, time
from mcp.server.mcpserver import MCPServer

server = MCPServer("flaky")

@server.tool()
def ping() -> str:
    "Answers pong."
    return "pong"

@server.tool()
def die() -> str:
    "Exits in the middle of the call."
    print("flaky: the disk is on fire", file=sys.stderr, flush=True)
    os._exit(3)

@server.tool()
def peek(path: str) -> str:
    "Reads a file, or says why it cannot."
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror}"

@server.tool()
def hang() -> str:
    "Never answers."
    while True:
        time.sleep(3600)

server.run()
"#;

fn flaky(servers: &support::Servers, dir: &std::path::Path) -> String {
    let path = script(dir, "flaky.py", FLAKY);
    format!("[mcp.flaky]\ncommand = {}\nargs = [{}]\ntimeout_s = 3\n", lit(&servers.python()), lit(&path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_call_fails_the_call_with_its_last_words_and_is_started_again() {
    let Some(servers) = support::servers() else { return };
    let (ws, scripts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hub = support::hub(&flaky(servers, scripts.path()), &[]);
    assert_eq!(call(&hub, ws.path(), "flaky", "ping", json!({})).await.unwrap().text, "pong");
    let err = call(&hub, ws.path(), "flaky", "die", json!({})).await.unwrap_err();
    let McpError::Crashed { server, tool, detail } = &err else { panic!("{err}") };
    assert_eq!((server.as_str(), tool.as_str()), ("flaky", "die"));
    assert!(detail.starts_with("exit status 3; its last stderr line: flaky: the disk is on fire"), "{detail}");
    assert_eq!(call(&hub, ws.path(), "flaky", "ping", json!({})).await.unwrap().text, "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_and_the_next_call_gets_a_new_one() {
    let Some(servers) = support::servers() else { return };
    let (ws, scripts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hub = support::hub(&flaky(servers, scripts.path()), &[]);
    let err = call(&hub, ws.path(), "flaky", "hang", json!({})).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "mcp server `flaky` did not answer `hang` within 3 s; it was stopped and starts again on the next call"
    );
    assert_eq!(call(&hub, ws.path(), "flaky", "ping", json!({})).await.unwrap().text, "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_time_is_a_second_stdio_server() {
    let Some(servers) = support::servers() else { return };
    let ws = tempfile::tempdir().unwrap();
    let toml = format!(
        "[mcp.time]\ncommand = {}\nargs = [\"--local-timezone\", \"UTC\"]\n",
        lit(&servers.py.join("bin/mcp-server-time").display().to_string())
    );
    let hub = support::hub(&toml, &[]);
    let tools = hub.tools(Target { server: "time", workspace: ws.path(), pid: 1 }).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["get_current_time", "convert_time"]);
    let out = call(&hub, ws.path(), "time", "get_current_time", json!({"timezone": "Europe/Paris"})).await.unwrap();
    let shown: Value = serde_json::from_str(&out.text).unwrap();
    assert_eq!((shown["timezone"].clone(), out.is_error), (json!("Europe/Paris"), false));
}

const HTTP_SERVER: &str = r#"
import sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("adder")

@server.tool()
def add(a: int, b: int) -> int:
    "Adds two numbers."
    return a + b

server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
"#;

/// A streamable-HTTP server on 127.0.0.1, killed on drop.
struct HttpServer(Child);

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_server(servers: &support::Servers, dir: &std::path::Path) -> (HttpServer, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = script(dir, "adder.py", HTTP_SERVER);
    let mut child = Command::new(servers.python())
        .arg(&path)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Uvicorn says when it listens.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("the server ended before it listened").unwrap();
        if line.contains("Uvicorn running on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (HttpServer(child), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamable_http_server_is_reached_by_url_with_headers_from_the_environment() {
    let Some(servers) = support::servers() else { return };
    let (ws, scripts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_server, port) = http_server(servers, scripts.path());
    let toml = format!(
        "[mcp.adder]\nurl = \"http://127.0.0.1:{port}/mcp\"\nheaders = {{ X-Test-Token = \"env:ADDER_TOKEN\" }}\n"
    );
    let hub = support::hub(&toml, &[("ADDER_TOKEN", "secret")]);
    let tools = hub.tools(Target { server: "adder", workspace: ws.path(), pid: 1 }).await.unwrap();
    assert_eq!(tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["add"]);
    let out = call(&hub, ws.path(), "adder", "add", json!({"a": 40, "b": 2})).await.unwrap();
    assert_eq!((out.text.as_str(), out.structured, out.is_error), ("42", Some(json!({"result": 42})), false));

    let missing = support::hub(&toml, &[]);
    let err = call(&missing, ws.path(), "adder", "add", json!({"a": 1, "b": 2})).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "mcp server `adder` could not be started: environment variable ADDER_TOKEN (for mcp.adder.headers.X-Test-Token) is not set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_keeps_server_filesystem_inside_its_workspace_whatever_it_is_told() {
    let Some(servers) = support::servers() else { return };
    let (ws, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(ws.path().join("inside.txt"), "in the workspace").unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    // The server itself is told it may read everything.
    let toml = format!("[mcp.fs]\ncommand = {}\nargs = [\"/\"]\n", lit(&servers.node_bin("mcp-server-filesystem")));
    let hub = support::hub(&toml, &[]);
    let inside = ws.path().join("inside.txt").display().to_string();
    let ok = call(&hub, ws.path(), "fs", "read_text_file", json!({"path": inside})).await.unwrap();
    assert_eq!((ok.text.as_str(), ok.is_error), ("in the workspace", false));
    let denied =
        call(&hub, ws.path(), "fs", "read_text_file", json!({"path": secret.display().to_string()})).await.unwrap();
    assert!(denied.is_error && !denied.text.contains("secret"), "{denied:?}");
    // The OS refused it (Landlock, or a file system without the path), not the server's own checks.
    assert!(denied.text.starts_with("EACCES: permission denied") || denied.text.contains("ENOENT"), "{}", denied.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_script_reaches_its_workspace_but_not_the_host_or_its_secrets() {
    let Some(servers) = support::servers() else { return };
    let (ws, scripts, outside) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(ws.path().join("mine.txt"), "the workspace's").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "the host's").unwrap();
    let hub = support::hub(&flaky(servers, scripts.path()), &[]);
    let peek = |path: std::path::PathBuf| {
        let hub = hub.clone();
        let ws = ws.path().to_path_buf();
        async move { call(&hub, &ws, "flaky", "peek", json!({"path": path})).await.unwrap().text }
    };
    assert_eq!(peek(ws.path().join("mine.txt")).await, "the workspace's");
    assert_eq!(peek(outside.path().join("secret.txt")).await, "FileNotFoundError: No such file or directory");
    assert_eq!(peek("/etc/shadow".into()).await, "FileNotFoundError: No such file or directory");
}

const FETCHER: &str = r#"
import urllib.request
from mcp.server.mcpserver import MCPServer

server = MCPServer("fetcher")

@server.tool()
def fetch(url: str) -> str:
    "Fetches a URL."
    try:
        return urllib.request.urlopen(url, timeout=10).read().decode()
    except Exception as e:
        return f"failed: {e}"

server.run("stdio")
"#;

/// A server has no network unless the operator's `[mcp.NAME] net` names
/// the destination; then only through the sandbox's proxy, to what it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_reaches_only_the_hosts_its_configuration_grants_it() {
    use std::io::{Read, Write};
    let Some(servers) = support::servers() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "fetcher.py", FETCHER);
    let ws = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let other = format!("http://127.0.0.1:{}/", port.wrapping_add(1).max(1));
    let config =
        |net: &str| format!("[mcp.fetcher]\ncommand = {}\nargs = [{}]\n{net}", lit(&servers.python()), lit(&path));
    let ungranted = support::hub(&config(""), &[]);
    let out = call(&ungranted, ws.path(), "fetcher", "fetch", json!({"url": url})).await.unwrap();
    assert!(out.text.starts_with("failed: "), "{}", out.text);
    let granted = support::hub(&config(&format!("net = [\"127.0.0.1:{port}\"]\n")), &[]);
    let out = call(&granted, ws.path(), "fetcher", "fetch", json!({"url": url})).await.unwrap();
    assert_eq!(out.text, "hello");
    let out = call(&granted, ws.path(), "fetcher", "fetch", json!({"url": other})).await.unwrap();
    assert!(out.text.starts_with("failed: HTTP Error 403"), "{}", out.text);
    ungranted.stop_all().await;
    granted.stop_all().await;
}
