//! A dynamic tool (registered by the test, as MCP servers and operator
//! tools will be) through the real scheduler: allowed, denied by grant,
//! parked on `ask` and run exactly as approved, rejected by its schema with
//! nothing run; the audit chain verifies, and replay never runs it again.

use libos_kernel::audit::{AuditDecision, AuditKind, KernelAction};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libos_images::{Image, ImageSet};
use libos_kernel::caps::{Resource, ResourceKind, Right};
use libos_kernel::{Actor, AuditFilter, Kernel, Pid, ProcState, SpawnSpec, Verdict, WaitOn};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel};
use libos_tools::{DynamicTool, Invocation, Registry, ToolContext, ToolFuture, ToolHandler, ToolName, ToolOutput};
use pretty_assertions::assert_eq;
use serde_json::json;

/// Records every call it runs.
#[derive(Default)]
struct Git {
    ran: Mutex<Vec<String>>,
}

impl ToolHandler for Git {
    fn call<'a>(&'a self, call: Invocation<'a>, ctx: &'a ToolContext) -> ToolFuture<'a> {
        Box::pin(async move {
            self.ran.lock().unwrap().push(format!("{} {}", call.tool, call.canonical));
            ToolOutput::Ok(format!("{} ran for pid {}", call.tool, ctx.pid.map_or(0, Pid::get)))
        })
    }
}

fn registry(git: &Arc<Git>) -> Registry {
    let mut registry = Registry::default();
    for tool in ["git_status", "git_push", "git_commit"] {
        let mut properties = json!({"repo_path": {"type": "string"}});
        if tool == "git_commit" {
            properties["message"] = json!({"type": "string", "minLength": 1});
        }
        let schema = json!({"type": "object", "properties": properties, "required": ["repo_path"], "additionalProperties": false});
        let dynamic = DynamicTool::new(
            ToolName::new(&format!("git__{tool}")).unwrap(),
            "test server git",
            format!("{tool} of the repository"),
            schema,
            vec![(Resource::new(ResourceKind::Mcp, format!("git/{tool}")), Right::Exec)],
            git.clone(),
        )
        .unwrap();
        registry.register(dynamic).unwrap();
    }
    registry
}

const IMAGE: &str = r#"
name = "gitter"
version = "1"
system_prompt = "You use git."
tools = ["git__git_status", "git__git_push", "git__git_commit", "exit"]
grants = ["exec mcp:git/* ask", "exec mcp:git/git_status", "exec mcp:git/git_push deny"]
"#;

const SCRIPT: &str = r#"
[[agent]]
image = "gitter"
[[agent.step]]
tool = "git__git_status"
args = { repo_path = "." }
[[agent.step]]
tool = "git__git_push"
args = { repo_path = "." }
[[agent.step]]
tool = "git__git_commit"
args = { repo_path = ".", message = "" }
[[agent.step]]
tool = "git__git_commit"
args = { repo_path = ".", message = "fix" }
[[agent.step]]
tool = "exit"
args = { result = "committed" }
"#;

async fn run_until_idle(kernel: &Kernel, registry: &Registry, catalog: &ImageSet) {
    let model = Arc::new(ScriptedModel::new("scripted", Script::parse("test", SCRIPT).unwrap()));
    let env = quantum::env_with_registry(
        kernel.clone(),
        ModelRouter::default().with_override(model),
        QuantumPolicy { max_repairs: 2, backoff: Duration::from_secs(60) },
        catalog.clone(),
        quantum::default_sandbox(),
        registry.clone(),
    );
    let config = SchedulerConfig { until_idle: true, poll: Duration::from_millis(5), ..Default::default() };
    Scheduler::new(env, config).run(std::future::pending()).await.unwrap();
}

#[tokio::test]
async fn a_dynamic_tool_is_a_syscall_like_any_other() {
    let git = Arc::new(Git::default());
    let registry = registry(&git);
    // An image naming a tool the registry does not know is an error naming it.
    let unknown = Image::parse("gitter.toml", IMAGE).unwrap_err().to_string();
    assert!(unknown.contains("field `tools[0]`: unknown tool `git__git_status`"), "{unknown}");
    let image = Image::parse_with("gitter.toml", IMAGE, &registry).unwrap();
    let mut catalog = ImageSet::default();
    catalog.insert(image.clone());

    let kernel = Kernel::in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let digest = kernel.register_image(&image.name, &image.version, &image.source).unwrap();
    let spec = SpawnSpec {
        image: digest,
        goal: "commit the fix".into(),
        workspace: dir.path().to_path_buf(),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    };
    let pid = kernel.spawn_with_grants(&spec, &image.grants).unwrap();

    run_until_idle(&kernel, &registry, &catalog).await;
    // Status ran; push was denied; the empty message was rejected by the
    // schema and repaired; the commit is parked for a human.
    let pending = kernel.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].tool.as_str(), pending[0].args.as_str()),
        ("git__git_commit", r#"{"message":"fix","repo_path":"."}"#)
    );
    assert!(matches!(kernel.process(pid).unwrap().state, ProcState::Waiting { on: WaitOn::Human(_) }));
    assert_eq!(*git.ran.lock().unwrap(), vec![r#"git__git_status {"repo_path":"."}"#]);

    kernel.decide(pending[0].id, &Verdict::Approve { always: false }, &Actor::operator()).unwrap();
    run_until_idle(&kernel, &registry, &catalog).await;
    assert!(matches!(kernel.process(pid).unwrap().state, ProcState::Exited { .. }));
    assert_eq!(
        *git.ran.lock().unwrap(),
        vec![r#"git__git_status {"repo_path":"."}"#, r#"git__git_commit {"message":"fix","repo_path":"."}"#]
    );

    // What the model saw, call by call.
    let (entries, _) = kernel.transcript(pid, None).unwrap();
    let seen: Vec<String> =
        entries.iter().map(|e| format!("{} -> {:?}: {}", e.call.tool, e.result.outcome, e.result.content)).collect();
    assert_eq!(
        seen,
        vec![
            format!("git__git_status -> Ok: git__git_status ran for pid {pid}"),
            "git__git_push -> Denied: permission denied: exec mcp:git/git_push (grant 3 denies it)".to_string(),
            format!("git__git_commit -> Ok: git__git_commit ran for pid {pid}"),
            "exit -> Ok: process exited".to_string(),
        ]
    );
    // The audit holds every call by its name, the rejected one included, and
    // an intent record before each run of the tool.
    let records = kernel.audit(&AuditFilter { pid: Some(pid), ..Default::default() }).unwrap();
    let calls: Vec<String> = records
        .iter()
        .filter(|r| r.kind == AuditKind::Tool || r.kind == AuditKind::Effect || r.action.is(KernelAction::Request))
        .map(|r| format!("{} {} {} {}", r.kind, r.action, r.outcome, r.decision.map_or("-", AuditDecision::as_str)))
        .collect();
    assert_eq!(
        calls,
        vec![
            "effect git__git_status pending -",
            "tool git__git_status ok allow",
            "tool git__git_push denied deny",
            "tool git__git_commit rejected -",
            "tool git__git_commit parked ask",
            "kernel request ok -",
            "effect git__git_commit pending -",
            "tool git__git_commit ok approved",
            "tool exit ok -",
        ]
    );
    assert_eq!(kernel.audit_verify(None).unwrap().broken, None);

    // Replay answers the dynamic calls from the record: nothing runs again.
    let report = libos_runtime::replay::replay_with(&kernel, pid, &registry).await.unwrap();
    assert!(report.matches(), "{report:#?}");
    assert_eq!(git.ran.lock().unwrap().len(), 2);
}
