//! `libos mcp list | tools SERVER | call SERVER TOOL ARGS`: an operator's
//! check of the MCP servers in `libos.toml`. Servers are started exactly as
//! a scheduler starts them (sandboxed, in the workspace, never reaching
//! libos's own files) and stopped when the command ends.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use libos_kernel::OpenMode;
use libos_mcp::{Hub, ServerConfig, Target, Transport};
use libos_runtime::Config;
use libos_sandbox::{Launcher, Sandbox};
use serde_json::{Value, json};

use crate::args::{McpAction, McpArgs};
use crate::ctx::Ctx;
use crate::exit::UsageError;
use crate::render::{block, one_line, table};

/// Runs one `libos mcp` subcommand.
pub async fn run(ctx: &Ctx, args: &McpArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    match &args.action {
        McpAction::List { check, workspace, json } => {
            let hub = if *check { Some(hub(ctx, &config)?) } else { None };
            let ws = workspace_dir(workspace.as_deref())?;
            list(&config, hub.as_ref(), &ws, *json).await
        }
        McpAction::Tools { server, workspace, json } => {
            let ws = workspace_dir(workspace.as_deref())?;
            let hub = hub(ctx, &config)?;
            let result = tools(&hub, server, &ws, *json).await;
            hub.stop_all().await;
            result
        }
        McpAction::Call { server, tool, args, workspace, json } => {
            let value: Value = serde_json::from_str(args).map_err(|e| UsageError(format!("ARGS is not JSON: {e}")))?;
            let Value::Object(arguments) = value else {
                return Err(UsageError("ARGS must be a JSON object".to_string()).into());
            };
            let ws = workspace_dir(workspace.as_deref())?;
            let hub = hub(ctx, &config)?;
            let result = hub.call(Target { server, workspace: &ws, pid: 0 }, tool, arguments, interrupted()).await;
            hub.stop_all().await;
            let out = result?;
            if *json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "text": out.text, "structured": out.structured, "is_error": out.is_error
                    }))?
                );
            } else {
                outln!("{}", block(&out.text));
            }
            if out.is_error {
                anyhow::bail!("`{tool}` on mcp server `{server}` reported an error (isError)");
            }
            Ok(())
        }
    }
}

async fn interrupted() {
    let _ = tokio::signal::ctrl_c().await;
}

/// The canonical workspace: `--workspace`, or the current directory.
fn workspace_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().context("the current directory")?,
    };
    std::fs::canonicalize(&dir)
        .ok()
        .filter(|d| d.is_dir())
        .ok_or_else(|| UsageError(format!("workspace {} is not a directory", dir.display())).into())
}

/// A hub for the configured servers, confined like a scheduler's programs
/// and kept from the store, the configuration and this program.
pub(crate) fn hub(ctx: &Ctx, config: &Config) -> anyhow::Result<Hub> {
    let mut protected: Vec<PathBuf> = match ctx.open(OpenMode::Existing) {
        Ok(kernel) => {
            for path in config.loaded_paths() {
                kernel.protect(&path);
            }
            kernel.protected_paths()
        }
        // No store yet: what it would protect is its file, the configuration and libos.
        Err(_) => {
            let db = PathBuf::from(&ctx.db);
            let mut p: Vec<PathBuf> = config.loaded_paths();
            p.extend(["", "-wal", "-shm", "-journal"].iter().map(|s| PathBuf::from(format!("{}{s}", db.display()))));
            p.extend(std::env::current_exe().ok());
            p.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect()
        }
    };
    protected.sort();
    protected.dedup();
    let launcher = Launcher::find().or_else(|_| {
        std::env::current_exe().map(Launcher::new).map_err(|e| libos_sandbox::SandboxError::NoLauncher(e.to_string()))
    });
    let sandbox = match launcher.and_then(Sandbox::confined) {
        Ok(s) => s,
        Err(e) => Sandbox::unavailable(e.to_string()),
    };
    if let Some(launcher) = sandbox.launcher() {
        protected.push(launcher.to_path_buf());
    }
    Ok(Hub::new(config.mcp.clone(), sandbox, protected))
}

/// What a server runs or reaches, for people.
fn target(c: &ServerConfig) -> String {
    match &c.transport {
        Transport::Stdio(s) => {
            std::iter::once(s.command.as_str()).chain(s.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
        }
        Transport::Http(h) => h.url.clone(),
    }
}

fn scope(c: &ServerConfig) -> &'static str {
    match c.scope {
        libos_mcp::Scope::Workspace => "workspace",
        libos_mcp::Scope::Process => "process",
    }
}

async fn list(config: &Config, hub: Option<&Hub>, ws: &Path, as_json: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for c in config.mcp.values() {
        let state = match hub {
            None => "configured (started on demand)".to_string(),
            Some(hub) => match hub.tools(Target { server: c.name.as_str(), workspace: ws, pid: 0 }).await {
                Ok(tools) => format!("ok: {} tools", tools.len()),
                Err(e) => format!("failed: {e}"),
            },
        };
        out.push(json!({
            "name": c.name.as_str(), "transport": c.transport_name(), "target": target(c),
            "timeout_s": c.timeout.as_secs(), "idle_s": c.idle.as_secs(), "scope": scope(c), "state": state,
        }));
        rows.push(vec![
            c.name.to_string(),
            c.transport_name().to_string(),
            target(c),
            format!("{}s", c.timeout.as_secs()),
            format!("{}s", c.idle.as_secs()),
            scope(c).to_string(),
            state,
        ]);
    }
    if let Some(hub) = hub {
        hub.stop_all().await;
    }
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if rows.is_empty() {
            eprintln!("libos: no MCP servers are configured (add [mcp.NAME] to libos.toml)");
        }
        outln!("{}", table(&["NAME", "TRANSPORT", "RUNS", "TIMEOUT", "IDLE", "SCOPE", "STATE"], rows));
    }
    Ok(())
}

async fn tools(hub: &Hub, server: &str, ws: &Path, as_json: bool) -> anyhow::Result<()> {
    let tools = hub.tools(Target { server, workspace: ws, pid: 0 }).await?;
    if as_json {
        let all: Vec<Value> = tools.iter().map(|t| t.to_json()).collect();
        outln!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    // Descriptions and schemas are the server's text: escaped like model text.
    for (i, t) in tools.iter().enumerate() {
        if i > 0 {
            outln!();
        }
        let title = t.title.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
        outln!("{}", one_line(&format!("{}__{}{title}", server, t.name)));
        if let Some(d) = &t.description {
            outln!("  {}", one_line(d));
        }
        let hints = t.annotations.hints();
        if !hints.is_empty() {
            outln!("  hints (not authority): {}", one_line(&hints.join(", ")));
        }
        let schema = serde_json::to_string(&Value::Object(t.input_schema.clone()))?;
        outln!("  input: {}", one_line(&schema));
    }
    Ok(())
}
