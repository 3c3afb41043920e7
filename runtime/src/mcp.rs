//! MCP servers' tools as entries of a run's registry.
//!
//! At the start of a run, every server some image of the run names is
//! listed once (through a hub of its own, in an empty scratch directory:
//! see [`register_servers`]), and each of its tools becomes a
//! [`DynamicTool`] named `SERVER__TOOL` (mapped to a wire-safe name), with
//! the server's description and input schema, needing `exec
//! mcp:SERVER/TOOL`, its annotations kept for display only, and a handler
//! ([`McpTool`]) that calls the tool through the run's [`Hub`] in the
//! calling process's workspace. A server that cannot be listed is declared
//! [`ServerTools::Unavailable`]: the run goes on without its tools, and a
//! process whose image names it fails, naming the server.
//!
//! The registry is fixed for a run. A server that says
//! `notifications/tools/list_changed` during the run has its hub cache
//! invalidated, but the run keeps the tools it started with (a call of a
//! tool the server dropped is the server's refusal, shown to the model);
//! the next run lists afresh and sees the change.

use std::collections::BTreeSet;
use std::sync::Arc;

use libos_kernel::caps::{PatternName, Resource, ResourceKind, ResourcePattern, Right};
use libos_mcp::{Hub, ServerName, Target, ToolInfo};
use libos_tools::{
    DynamicTool, Invocation, Registry, ServerTools, ToolAnnotations, ToolContext, ToolFuture, ToolHandler, ToolName,
    ToolOutput,
};

/// Calls one tool of one server through the run's hub.
pub struct McpTool {
    hub: Hub,
    server: ServerName,
    tool: String,
}

impl ToolHandler for McpTool {
    fn call<'a>(&'a self, call: Invocation<'a>, ctx: &'a ToolContext) -> ToolFuture<'a> {
        Box::pin(async move {
            let target = Target {
                server: self.server.as_str(),
                workspace: ctx.workspace.root(),
                pid: ctx.pid.map_or(0, |p| p.get().unsigned_abs()),
            };
            // Cancellation is the future being dropped (a killed quantum, a
            // stopping scheduler): the hub's request goes with it.
            let run = self.hub.call(target, &self.tool, call.args.clone(), std::future::pending());
            let result = match ctx.time_left {
                Some(left) => match tokio::time::timeout(left, run).await {
                    Ok(r) => r,
                    Err(_) => {
                        return ToolOutput::Error(format!(
                            "`{}` on mcp server `{}` was stopped when the wall_time budget ran out",
                            self.tool, self.server
                        ));
                    }
                },
                None => run.await,
            };
            match result {
                Ok(out) if out.is_error => ToolOutput::Error(out.text),
                Ok(out) => ToolOutput::Ok(out.text),
                Err(e) => ToolOutput::Error(e.to_string()),
            }
        })
    }
}

/// The tool's annotations as the registry keeps them (display only).
fn annotations(info: &ToolInfo) -> ToolAnnotations {
    let a = &info.annotations;
    ToolAnnotations {
        title: info.title.clone(),
        read_only: a.read_only,
        destructive: a.destructive,
        idempotent: a.idempotent,
        open_world: a.open_world,
    }
}

/// Registers `tools` of `server` in `registry`, run through `hub`. Returns
/// the names registered (each with its name on the server) and a line for
/// each tool refused (an unusable name or schema, a collision).
pub fn register_tools(
    registry: &mut Registry,
    hub: &Hub,
    server: &ServerName,
    tools: &[ToolInfo],
) -> (Vec<(String, ToolName)>, Vec<String>) {
    let mut listed = Vec::new();
    let mut refused = Vec::new();
    let source = |t: &str| format!("mcp server {server} (tool `{t}`)");
    for info in tools {
        let raw = &info.name;
        let resource_text = format!("mcp:{server}/{raw}");
        let resource = match ResourcePattern::parse(&resource_text) {
            Ok(ResourcePattern { name: PatternName::Exact(_), .. }) => {
                Resource::new(ResourceKind::Mcp, format!("{server}/{raw}"))
            }
            Ok(_) => {
                refused.push(format!(
                    "mcp server `{server}`: tool `{}` is not offered: its name is not usable",
                    raw.escape_debug()
                ));
                continue;
            }
            Err(e) => {
                refused.push(format!("mcp server `{server}`: tool `{}` is not offered: {e}", raw.escape_debug()));
                continue;
            }
        };
        let made = ToolName::mapped(&format!("{server}{}{raw}", libos_mcp::NAME_SEPARATOR))
            .map_err(libos_tools::RegistryError::from)
            .and_then(|name| {
                let description = info.description.clone().or_else(|| info.title.clone()).unwrap_or_default();
                let handler = Arc::new(McpTool { hub: hub.clone(), server: server.clone(), tool: raw.clone() });
                DynamicTool::new(
                    name,
                    source(raw),
                    description,
                    serde_json::Value::Object(info.input_schema.clone()),
                    vec![(resource, Right::Exec)],
                    handler,
                )
            });
        let registered = made.and_then(|tool| {
            let tool = tool.with_annotations(annotations(info));
            let name = tool.name().clone();
            registry.register(tool).map(|()| name)
        });
        match registered {
            Ok(name) => listed.push((raw.clone(), name)),
            Err(e) => refused.push(format!("mcp server `{server}`: tool `{}` is not offered: {e}", raw.escape_debug())),
        }
    }
    (listed, refused)
}

/// Lists every server in `named` that `hub` has (all at once, each through
/// one instance of its own started in an empty scratch directory, stopped
/// afterwards: listing hands a server no workspace any process has) and
/// registers its tools in `registry` with handlers that call through
/// `hub`. Every server `hub` has is declared in the registry: listed,
/// unavailable because listing failed, or unavailable because no image of
/// the run names it. Returns what the operator should hear once: servers
/// that could not be listed, tools refused.
pub async fn register_servers(registry: &mut Registry, hub: &Hub, named: &BTreeSet<String>) -> Vec<String> {
    let mut notices = Vec::new();
    let lister = hub.sibling();
    let scratch = tempfile::Builder::new().prefix("libos-mcp-list-").tempdir();
    let scratch = scratch.and_then(|d| std::fs::canonicalize(d.path()).map(|p| (d, p)));
    let mut listings = tokio::task::JoinSet::new();
    let configured: Vec<ServerName> = hub.servers().map(|c| c.name.clone()).collect();
    for name in &configured {
        if !named.contains(name.as_str()) {
            continue;
        }
        let (lister, name) = (lister.clone(), name.clone());
        let dir = scratch.as_ref().map(|(_, p)| p.clone()).map_err(|e| e.to_string());
        listings.spawn(async move {
            let listed = match &dir {
                Ok(dir) => lister
                    .tools(Target { server: name.as_str(), workspace: dir, pid: 0 })
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("no scratch directory to list it in: {e}")),
            };
            (name, listed)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = listings.join_next().await {
        if let Ok(r) = joined {
            results.push(r);
        }
    }
    lister.stop_all().await;
    drop(scratch);
    // Registered in the servers' order, whatever order the listings ended in.
    results.sort_by(|a, b| a.0.cmp(&b.0));
    for name in &configured {
        let declared = match results.iter().find(|(n, _)| n == name) {
            None if named.contains(name.as_str()) => {
                ServerTools::Unavailable("its listing stopped before it answered".to_string())
            }
            None => ServerTools::Unavailable(
                "no image of this run's catalog names it, so it was not listed at start".to_string(),
            ),
            Some((_, Err(e))) => {
                notices.push(format!(
                    "mcp server `{name}` could not be listed; this run goes on without its tools, and processes \
                     whose image names it fail: {e}"
                ));
                ServerTools::Unavailable(format!("it could not be listed at start: {e}"))
            }
            Some((_, Ok(tools))) => {
                let (listed, refused) = register_tools(registry, hub, name, tools);
                notices.extend(refused);
                ServerTools::Listed(listed)
            }
        };
        registry.declare_server(name.as_str(), declared);
    }
    notices
}

/// Declares every server of `hub` without listing any (commands that start
/// no server: `libos spawn` without `--run`, `libos images`): images naming
/// them load, and their processes get the tools when a run lists them.
pub fn declare_unlisted(registry: &mut Registry, servers: impl IntoIterator<Item = ServerName>, why: &str) {
    for name in servers {
        registry.declare_server(name.as_str(), ServerTools::Unavailable(why.to_string()));
    }
}
