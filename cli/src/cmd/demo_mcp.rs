//! `libos demo mcp`: an agent using a real MCP server, one call behind
//! approval. Unlike `libos demo`, it needs npm (once): it installs
//! `@modelcontextprotocol/server-everything` under a cache directory (or
//! reuses it there), writes a `libos.toml` naming it and an image granting
//! `exec mcp:everything/echo` outright and `exec mcp:everything/get-sum`
//! behind `ask`, and runs a scripted agent that calls both. The demo, as
//! the operator, reads `libos pending` (the call, and the server's hints
//! labelled as its claims) and approves; then the transcript, the
//! decisions in the audit log and the audit verification are printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use libos_kernel::audit::KernelAction;
use libos_kernel::{Actor, AuditFilter, OpenMode, Verdict};

use crate::args::{AuditAction, AuditArgs, DemoMcpArgs, JsonArg, LogsArgs, SchedArgs};
use crate::cmd;
use crate::ctx::{self, Ctx};

/// The package the demo drives, pinned: the script names its tools.
pub const PACKAGE: &str = "@modelcontextprotocol/server-everything";
/// Its version.
pub const VERSION: &str = "2026.8.31";

const GOAL: &str = "Check the MCP server answers, then add 2 and 3 with it";

const IMAGE: &str = r#"name = "mcp-demo"
version = "1"
system_prompt = "You use the tools of the `everything` MCP server."
tools = ["exit"]
mcp_tools = ["everything/echo", "everything/get-sum"]
# The most specific grant decides: echo runs, get-sum waits for a person.
grants = ["exec mcp:everything/echo", "exec mcp:everything/get-sum ask"]
"#;

const SCRIPT: &str = r#"# The scripted agent of `libos demo mcp`.
[[agent]]
image = "mcp-demo"

[[agent.step]]
say = "First a harmless echo: my grant allows it outright."
tool = "everything__echo"
args = { message = "hello from libos" }

[[agent.step]]
say = "Now the sum: my grant for this tool says ask, so I park until the operator decides."
tool = "everything__get-sum"
args = { a = 2, b = 3 }

[[agent.step]]
tool = "exit"
args = { result = "the server echoed and added 2 and 3" }
"#;

/// The default cache: `$XDG_CACHE_HOME/libos`, else `~/.cache/libos`.
fn default_cache() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("libos"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).context("demo mcp: HOME is not set; pass --cache")?;
    Ok(PathBuf::from(home).join(".cache/libos"))
}

/// The installed version of the package under the npm prefix `prefix`, if any.
fn installed(prefix: &Path) -> Option<String> {
    let manifest = prefix.join("node_modules").join(PACKAGE).join("package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

/// Installs (or finds) server-everything under `cache/mcp-node` (the
/// prefix the test suite uses under `target/`), saying what it does; the
/// server's program.
fn install(cache: &Path) -> anyhow::Result<PathBuf> {
    let prefix = cache.join("mcp-node");
    let bin = prefix.join("node_modules/.bin/mcp-server-everything");
    if installed(&prefix).as_deref() == Some(VERSION) && bin.exists() {
        outln!("using {PACKAGE}@{VERSION} installed in {}", prefix.display());
        return Ok(bin);
    }
    outln!("installing {PACKAGE}@{VERSION} into {} (npm, once) ...", prefix.display());
    std::fs::create_dir_all(&prefix).with_context(|| format!("cannot create {}", prefix.display()))?;
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .arg(format!("{PACKAGE}@{VERSION}"))
        .output()
        .context("demo mcp: cannot run npm (is Node.js installed?)")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
        anyhow::bail!(
            "demo mcp: npm could not install {PACKAGE}@{VERSION} (is the npm registry reachable?): {}",
            crate::render::one_line(last)
        );
    }
    anyhow::ensure!(bin.exists(), "demo mcp: npm installed {PACKAGE} but {} is missing", bin.display());
    Ok(bin)
}

fn lit(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Runs the MCP demo.
pub async fn run(args: &DemoMcpArgs) -> anyhow::Result<()> {
    let cache = match &args.cache {
        Some(c) => c.clone(),
        None => default_cache()?,
    };
    // The server's path goes into a configuration in another directory.
    let cache = std::path::absolute(&cache).with_context(|| format!("demo mcp: bad cache path {}", cache.display()))?;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            std::fs::canonicalize(d)?
        }
        None => tempfile::Builder::new().prefix("libos-demo-mcp-").tempdir()?.keep(),
    };
    section(&format!("libos demo mcp in {}", dir.display()));
    let bin = install(&cache)?;

    // The operator's files: the server, the image, the script. They sit
    // outside the agent's workspace, and the run protects them anyway.
    let etc = dir.join("etc");
    std::fs::create_dir_all(etc.join("images"))?;
    let config_path = etc.join("libos.toml");
    let config_text = format!(
        "image_dirs = [\"images\"]\n\n[mcp.everything]\ncommand = {}\nargs = [\"stdio\"]\n",
        lit(&bin.display().to_string())
    );
    std::fs::write(&config_path, &config_text)?;
    std::fs::write(etc.join("images/mcp-demo.toml"), IMAGE)?;
    let script = etc.join("script.toml");
    std::fs::write(&script, SCRIPT)?;
    let workspace = dir.join("workspace");
    std::fs::create_dir_all(&workspace)?;
    outln!("wrote {}:", config_path.display());
    outln!("{}", crate::render::block(config_text.trim_end()));
    outln!("wrote {}:", etc.join("images/mcp-demo.toml").display());
    outln!("{}", crate::render::block(IMAGE.trim_end()));

    let db = dir.join("libos.db").to_string_lossy().into_owned();
    let ctx = Ctx { db: db.clone(), config: Some(config_path), sync: libos_kernel::Durability::default() };
    let kernel = ctx.open(OpenMode::Create)?;
    anyhow::ensure!(
        kernel.processes(libos_kernel::ProcessFilter::All)?.is_empty(),
        "the demo needs a store with no processes yet, and {db} has some"
    );
    let config = ctx.config()?;
    let images = ctx.images(&config)?;
    let image = images.get("mcp-demo")?;
    let pid = cmd::spawn::spawn(&kernel, image, GOAL, workspace, 0, &[])?;
    outln!("spawned mcp-demo as pid {pid}: {GOAL}");

    let loaded = ctx::load_run(&config, images.clone(), Some(&script))?;
    let sched = SchedArgs { concurrency: 2, script: None, lease_ttl: Duration::from_secs(60), unconfined_shell: false };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let k = kernel.clone();
    let scheduler = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        ctx::run_scheduler(&k, loaded, &sched, Duration::from_millis(20), None, shutdown).await
    });

    // The operator, from outside the scheduler: read the request, then approve.
    let mut decided = 0;
    let wake = Arc::new(tokio::sync::Notify::new());
    {
        let wake = wake.clone();
        kernel.on_commit(move || wake.notify_one());
    }
    loop {
        if kernel.process(pid)?.state.is_terminal() || scheduler.is_finished() {
            break;
        }
        if let Some(req) = kernel.pending()?.first() {
            section("libos pending");
            cmd::approvals::pending(&ctx, &JsonArg { json: false })?;
            kernel.decide(req.id, &Verdict::Approve { always: false }, &Actor::operator())?;
            outln!("\n$ libos approve {}", req.id);
            outln!("approved request {}: pid {} will run {} as parked", req.id, req.pid, req.tool);
            decided += 1;
            continue;
        }
        // Woken by the scheduler's commits; the timeout only bounds a missed wake-up.
        let _ = tokio::time::timeout(Duration::from_millis(200), wake.notified()).await;
    }
    let _ = stop.send(());
    let summary = scheduler.await.context("scheduler task failed")??;
    let state = kernel.process(pid)?.state;
    anyhow::ensure!(state.is_terminal(), "demo mcp: the agent did not finish");
    outln!("\nscheduler stopped: {} quanta committed, {decided} request approved by the operator", summary.quanta);

    section(&format!("libos logs {pid}"));
    cmd::logs::run(&ctx, &LogsArgs { pid: pid.to_string(), json: false, follow: false }).await?;
    section("MCP calls and decisions in the audit log");
    for r in kernel.audit(&AuditFilter::default())? {
        let decided = r.action.is(KernelAction::Approve) || r.action.is(KernelAction::Deny);
        if r.action.tool_name().is_some_and(|t| t.as_str().starts_with("everything__")) || decided {
            let detail = crate::render::one_line(r.detail.as_deref().unwrap_or_default()).into_owned();
            outln!(
                "{:<5} {:<16} {:<20} {:<8} {detail}",
                r.seq.to_string(),
                r.actor.to_string(),
                r.action.as_str(),
                r.outcome.as_str()
            );
        }
    }
    section("libos audit verify");
    let audit =
        AuditArgs { action: Some(AuditAction::Verify { expect_head: None, json: false }), ..AuditArgs::default() };
    cmd::audit::run(&ctx, &audit).await?;
    outln!();
    outln!("Look around yourself:");
    outln!("  export LIBOS_DB={db} LIBOS_CONFIG={}", etc.join("libos.toml").display());
    outln!("  cargo run -p libos-cli -- logs {pid}");
    outln!("  cargo run -p libos-cli -- images show mcp-demo   # the tools and the server's hints");
    outln!("  cargo run -p libos-cli -- audit");
    match state {
        libos_kernel::ProcState::Exited { .. } => Ok(()),
        other => anyhow::bail!("demo mcp: the agent did not exit: {}", crate::render::one_line(&other.to_string())),
    }
}

fn section(title: &str) {
    outln!();
    outln!("== {title}");
}
