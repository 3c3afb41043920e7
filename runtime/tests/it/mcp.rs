//! MCP servers' tools as syscalls, through the real scheduler with the
//! scripted model and real servers nobody on this project wrote
//! (`@modelcontextprotocol/server-everything`) plus a Python `mcp` SDK
//! server that records every call it gets, crashes and hangs on request.
//! Skipped, with the reason printed, when npm/PyPI cannot be reached.

use libos_kernel::audit::AuditKind;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use libos_images::{Image, ImageSet};
use libos_kernel::{Actor, AuditFilter, Kernel, ProcState, SpawnSpec, Verdict, WaitOn};
use libos_mcp::Hub;
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{
    ChatModel, ChatRequest, ChatResponse, ModelError, ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel,
};
use libos_tools::{Registry, ServerTools};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "../../../mcp/tests/it/support.rs"]
mod support;

use support::lit;

/// A Python SDK server that appends each call it gets to `calls.log` in its
/// workspace (so a test can see what reached it), dies or hangs on request.
const RECORDER: &str = r#"
import os, sys, time
from mcp.server.mcpserver import MCPServer

server = MCPServer("recorder")

def seen(line):
    with open("calls.log", "a") as f:
        f.write(line + "\n")

@server.tool()
def note(text: str) -> str:
    "Writes a note into the workspace."
    seen("note " + text)
    with open("notes.txt", "a") as f:
        f.write(text + "\n")
    return "noted: " + text

@server.tool()
def ping() -> str:
    "Answers pong."
    seen("ping")
    return "pong"

@server.tool()
def die() -> str:
    "Exits in the middle of the call."
    seen("die")
    print("recorder: the disk is on fire", file=sys.stderr, flush=True)
    os._exit(3)

@server.tool()
def hang() -> str:
    "Never answers."
    seen("hang")
    while True:
        time.sleep(3600)

server.run()
"#;

fn config(servers: &support::Servers, scripts: &std::path::Path) -> String {
    let recorder = support::script(scripts, "recorder.py", RECORDER);
    format!(
        "[mcp.everything]\ncommand = {}\nargs = [\"stdio\"]\n\n[mcp.rec]\ncommand = {}\nargs = [{}]\ntimeout_s = 3\n\n\
         [mcp.gone]\ncommand = \"/nonexistent/mcp-server\"\n",
        lit(&servers.node_bin("mcp-server-everything")),
        lit(&servers.python()),
        lit(&recorder)
    )
}

const IMAGE: &str = r#"
name = "mcpuser"
version = "1"
system_prompt = "You use MCP tools."
tools = ["exit"]
mcp = ["rec"]
mcp_tools = ["everything/echo", "everything/get-sum"]
grants = ["exec mcp:everything/echo", "exec mcp:everything/get-sum deny", "exec mcp:rec/*", "exec mcp:rec/note ask"]
"#;

const BROKEN_IMAGE: &str = r#"
name = "needsgone"
version = "1"
system_prompt = "You use a server that is not there."
tools = ["exit"]
mcp = ["gone"]
grants = ["exec mcp:gone/*"]
"#;

const SCRIPT: &str = r#"
[[agent]]
image = "mcpuser"
[[agent.step]]
tool = "everything__echo"
args = { message = "hello" }
[[agent.step]]
tool = "everything__get-sum"
args = { a = 2, b = 3 }
[[agent.step]]
tool = "rec__note"
args = { text = 5 }
[[agent.step]]
tool = "rec__note"
args = { text = "approved note" }
[[agent.step]]
tool = "rec__die"
args = {}
[[agent.step]]
tool = "rec__ping"
args = {}
[[agent.step]]
tool = "rec__hang"
args = {}
[[agent.step]]
tool = "exit"
args = { result = "done" }

[[agent]]
image = "needsgone"
[[agent.step]]
tool = "exit"
args = { result = "never" }
"#;

/// Plays the script and keeps the tool table of every request.
struct Recording {
    inner: ScriptedModel,
    tables: Mutex<Vec<Value>>,
}

#[async_trait]
impl ChatModel for Recording {
    fn profile(&self) -> &str {
        self.inner.profile()
    }
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.tables.lock().unwrap().push(serde_json::from_slice(request.tools.json()).unwrap());
        self.inner.complete(request).await
    }
}

async fn run_until_idle(kernel: &Kernel, model: Arc<Recording>, registry: &Registry, catalog: &ImageSet) {
    let env = quantum::env_with_registry(
        kernel.clone(),
        ModelRouter::default().with_override(model),
        QuantumPolicy { max_repairs: 2, backoff: Duration::from_secs(60) },
        catalog.clone(),
        support::sandbox(),
        registry.clone(),
    );
    let config = SchedulerConfig { until_idle: true, poll: Duration::from_millis(5), ..Default::default() };
    Scheduler::new(env, config).run(std::future::pending()).await.unwrap();
}

fn spawn(kernel: &Kernel, image: &Image, ws: &std::path::Path) -> libos_kernel::Pid {
    let digest = kernel.register_image(&image.name, &image.version, &image.source).unwrap();
    let spec = SpawnSpec {
        image: digest,
        goal: "use the tools".into(),
        workspace: ws.to_path_buf(),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    };
    kernel.spawn_with_grants(&spec, &image.grants).unwrap()
}

fn log(ws: &std::path::Path) -> String {
    std::fs::read_to_string(ws.join("calls.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tools_are_syscalls_through_the_scheduler() {
    let Some(servers) = support::servers() else { return };
    let (ws, scripts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ws_path = std::fs::canonicalize(ws.path()).unwrap();
    let hub: Hub = support::hub(&config(servers, scripts.path()), &[]);

    // The run's start: the servers the images name are listed; `gone`
    // cannot be, and the run goes on without it, saying so once.
    let named: BTreeSet<String> = ["everything", "rec", "gone"].map(String::from).into();
    let mut registry = Registry::default();
    let notices = libos_runtime::mcp::register_servers(&mut registry, &hub, &named).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].starts_with("mcp server `gone` could not be listed; this run goes on without its tools"),
        "{notices:?}"
    );
    assert!(matches!(registry.server("gone"), Some(ServerTools::Unavailable(_))));

    // An image naming a server the configuration lacks is an error naming both.
    let undeclared = Image::parse_with("x.toml", &IMAGE.replace("mcp = [\"rec\"]", "mcp = [\"git\"]"), &registry);
    assert_eq!(
        undeclared.unwrap_err().to_string(),
        "image x.toml: field `mcp[0]`: image `mcpuser` names mcp server `git`, which the configuration does not \
         declare (declared: everything, gone, rec; add [mcp.git] to libos.toml)"
    );
    let image = Image::parse_with("mcpuser.toml", IMAGE, &registry).unwrap();
    let tools: Vec<&str> = image.tools.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        tools,
        ["exit", "rec__note", "rec__ping", "rec__die", "rec__hang", "everything__echo", "everything__get-sum"]
    );
    // The image naming `gone` loads (the catalog does not fail for it), and says why it cannot run.
    let broken = Image::parse_with("needsgone.toml", BROKEN_IMAGE, &registry).unwrap();
    assert_eq!(broken.unavailable.len(), 1);

    let mut catalog = ImageSet::default();
    catalog.insert(image.clone());
    catalog.insert(broken.clone());
    let kernel = Kernel::in_memory().unwrap();
    let pid = spawn(&kernel, &image, &ws_path);
    let gone_pid = spawn(&kernel, &broken, &ws_path);
    let model = Arc::new(Recording {
        inner: ScriptedModel::new("scripted", Script::parse("test", SCRIPT).unwrap()),
        tables: Mutex::new(Vec::new()),
    });
    run_until_idle(&kernel, model.clone(), &registry, &catalog).await;

    // The process whose image names the unlisted server failed, naming it.
    let ProcState::Failed { error, .. } = kernel.process(gone_pid).unwrap().state else { panic!("not failed") };
    assert!(error.starts_with("image `needsgone` cannot run: mcp server `gone` has no tools this run: it could not be listed at start: mcp server `gone` could not be started"), "{error}");

    // The prompt offered the server's tools with the server's own schemas.
    let first = model.tables.lock().unwrap()[0].clone();
    let echo = first.as_array().unwrap().iter().find(|t| t["function"]["name"] == "everything__echo").unwrap();
    assert_eq!(echo["function"]["parameters"]["properties"]["message"]["type"], "string");
    assert_eq!(echo["function"]["parameters"]["required"], json!(["message"]));

    // Echo ran, get-sum was denied, the bad note was rejected with nothing
    // sent, the good note is parked for a human, exactly as the model made it.
    let pending = kernel.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].tool.as_str(), pending[0].args.as_str()), ("rec__note", r#"{"text":"approved note"}"#));
    assert!(matches!(kernel.process(pid).unwrap().state, ProcState::Waiting { on: WaitOn::Human(_) }));
    assert_eq!(log(&ws_path), "", "the server saw a call before its approval");

    kernel.decide(pending[0].id, &Verdict::Approve { always: false }, &Actor::operator()).unwrap();
    run_until_idle(&kernel, model.clone(), &registry, &catalog).await;
    assert!(matches!(kernel.process(pid).unwrap().state, ProcState::Exited { .. }));
    // What reached the server, in order: the approved note once, the crash,
    // the ping after it (a new instance), the hang.
    assert_eq!(log(&ws_path), "note approved note\ndie\nping\nhang\n");
    assert_eq!(std::fs::read_to_string(ws_path.join("notes.txt")).unwrap(), "approved note\n");

    let (entries, _) = kernel.transcript(pid, None).unwrap();
    let seen: Vec<String> = entries
        .iter()
        .map(|e| {
            let content = e.result.content.lines().next().unwrap_or("");
            format!("{} -> {:?}: {content}", e.call.tool, e.result.outcome)
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            "everything__echo -> Ok: Echo: hello".to_string(),
            "everything__get-sum -> Denied: permission denied: exec mcp:everything/get-sum (grant 2 denies it)".into(),
            "rec__note -> Ok: noted: approved note".into(),
            "rec__die -> Error: mcp server `rec` died during `die`: exit status 3; its last stderr line: recorder: the \
             disk is on fire (transport closed)"
                .into(),
            "rec__ping -> Ok: pong".into(),
            "rec__hang -> Error: mcp server `rec` did not answer `hang` within 3 s; it was stopped and starts again \
             on the next call"
                .into(),
            "exit -> Ok: process exited".into(),
        ]
    );
    // The audit: an intent record before every call that reached a server,
    // the schema-invalid one rejected, the chain intact.
    let records = kernel.audit(&AuditFilter { pid: Some(pid), ..Default::default() }).unwrap();
    let calls: Vec<String> = records
        .iter()
        .filter(|r| r.kind == AuditKind::Tool || r.kind == AuditKind::Effect)
        .map(|r| format!("{} {} {}", r.kind, r.action, r.outcome))
        .collect();
    assert_eq!(
        calls,
        vec![
            "effect everything__echo pending",
            "tool everything__echo ok",
            "tool everything__get-sum denied",
            "tool rec__note rejected",
            "tool rec__note parked",
            "effect rec__note pending",
            "tool rec__note ok",
            "effect rec__die pending",
            "tool rec__die error",
            "effect rec__ping pending",
            "tool rec__ping ok",
            "effect rec__hang pending",
            "tool rec__hang error",
            "tool exit ok",
        ]
    );
    assert_eq!(kernel.audit_verify(None).unwrap().broken, None);

    // Replay answers the MCP calls from the record: the server sees nothing.
    let report = libos_runtime::replay::replay_with(&kernel, pid, &registry).await.unwrap();
    assert!(report.matches(), "{report:#?}");
    assert_eq!(log(&ws_path), "note approved note\ndie\nping\nhang\n");
    hub.stop_all().await;
}
