//! `libos demo`: a scripted multi-agent run in a fresh store, no network.
//!
//! An orchestrator spawns three workers, each with a read grant on its own
//! directory (a write grant it asks for one of them is dropped: it cannot
//! delegate what it only holds behind approval). The workers report by
//! message; one tries to read a secret outside its grant and is denied. The
//! orchestrator, parked while it waits, writes the report: the write parks
//! on an approval the demo (as the operator) approves from outside the
//! scheduler; its attempt to rotate a key is parked too, and denied. Then
//! the process tree, the orchestrator's transcript, the decisions in the
//! audit log and the audit verification are printed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use libos_kernel::audit::{KernelAction, Outcome};
use libos_kernel::ipc::RequestKind;
use libos_kernel::{Actor, AuditFilter, Kernel, OpenMode, StoreLocation, Verdict};
use libos_runtime::{ModelRouter, Script, ScriptedModel};

use crate::args::{AuditAction, AuditArgs, CapsArgs, DemoArgs, JsonArg, LogsArgs, PsArgs, SchedArgs};
use crate::cmd;
use crate::ctx::{self, Ctx};

/// The built-in demo script.
pub const SCRIPT: &str = include_str!("../demo.toml");

const GOAL: &str = "Summarise the project's docs/, api/ and ops/ areas into REPORT.md, one worker per area";

const FILES: [(&str, &str); 5] = [
    ("README.txt", "Demo project for libos. Agents work here; their file tools cannot leave this directory.\n"),
    ("docs/overview.md", "# Overview\nWhat the project is, and how to start.\n"),
    ("api/endpoints.md", "# Endpoints\n- GET /ps\n- POST /approve\n"),
    ("ops/runbook.md", "# Runbook\nRotate the keys in secrets/keys.txt every quarter.\n"),
    ("secrets/keys.txt", "original-key\n"),
];

/// Runs the demo.
pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            std::fs::canonicalize(d)?
        }
        None => tempfile::Builder::new().prefix("libos-demo-").tempdir()?.keep(),
    };
    for (path, text) in FILES {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    let db = match &args.store {
        Some(db) => db.clone(),
        None => dir.join(".libos").join("libos.db").to_string_lossy().into_owned(),
    };
    let location = StoreLocation::parse(&db);
    let kernel = Kernel::open(&location, OpenMode::Create)?;
    if !kernel.processes(libos_kernel::ProcessFilter::All)?.is_empty() {
        anyhow::bail!("the demo needs a store with no processes yet, and {location} has some");
    }
    let ctx = Ctx { db: db.clone(), config: None, sync: libos_kernel::Durability::default() };
    let images = libos_images::ImageSet::shipped()?;
    let orchestrator = images.get("orchestrator")?;

    section(&format!("libos demo in {}", dir.display()));
    let root = cmd::spawn::spawn(&kernel, orchestrator, GOAL, dir.clone(), 0, &[])?;
    outln!("spawned orchestrator as pid {root}: {GOAL}");

    let script = Script::parse("builtin:demo.toml", SCRIPT).map_err(anyhow::Error::msg)?;
    let router = ModelRouter::default().with_override(Arc::new(ScriptedModel::new("scripted", script)));
    let sched = SchedArgs {
        concurrency: 4,
        script: None,
        lease_ttl: std::time::Duration::from_secs(60),
        unconfined_shell: false,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let k = kernel.clone();
    let catalog = images.clone();
    let scheduler = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        let loaded = ctx::Loaded {
            router,
            catalog,
            registry: libos_tools::Registry::builtin().clone(),
            sources: Vec::new(),
            mcp: Default::default(),
            image_dirs: Vec::new(),
            http: Default::default(),
        };
        ctx::run_scheduler(&k, loaded, &sched, Duration::from_millis(20), None, shutdown).await
    });

    // The operator, from outside the scheduler: read each request, then decide.
    let mut decided = 0;
    for _ in 0..2000 {
        if kernel.process(root)?.state.is_terminal() {
            break;
        }
        let open = kernel.pending()?;
        if let Some(req) = open.first() {
            section("libos pending");
            cmd::approvals::pending(&ctx, &JsonArg { json: false })?;
            let resource = match &req.kind {
                RequestKind::Approval { resource, .. } => resource.to_string(),
                RequestKind::Question { .. } => String::new(),
            };
            if resource.starts_with("fs:secrets/") {
                let reason = "key rotation needs a change ticket".to_string();
                kernel.decide(req.id, &Verdict::Deny { always: false, reason: reason.clone() }, &Actor::operator())?;
                outln!("\n$ libos deny {} --reason \"{reason}\"", req.id);
                outln!("denied request {}: pid {} is told so and goes on", req.id, req.pid);
            } else {
                kernel.decide(req.id, &Verdict::Approve { always: false }, &Actor::operator())?;
                outln!("\n$ libos approve {}", req.id);
                outln!("approved request {}: pid {} will run {} as parked", req.id, req.pid, req.tool);
            }
            decided += 1;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    let summary = scheduler.await.context("scheduler task failed")??;
    anyhow::ensure!(kernel.process(root)?.state.is_terminal(), "demo: the orchestrator did not finish");
    outln!("\nscheduler stopped: {} quanta committed, {decided} requests decided by the operator", summary.quanta);

    section("libos ps --all --tree");
    cmd::ps::run(&ctx, &PsArgs { all: true, tree: true, ..PsArgs::default() })?;
    section(&format!("libos caps {}   (the ops worker: its write grant was dropped)", root.get() + 3));
    cmd::caps::caps(&ctx, &CapsArgs { pid: (root.get() + 3).to_string(), json: false })?;
    section(&format!("libos logs {root}"));
    cmd::logs::run(&ctx, &LogsArgs { pid: root.to_string(), json: false, follow: false }).await?;
    section("decisions in the audit log");
    for r in kernel.audit(&AuditFilter::default())? {
        let decided = r.action.is(KernelAction::Approve) || r.action.is(KernelAction::Deny);
        if matches!(r.outcome, Outcome::Denied | Outcome::Parked) || decided {
            let detail = crate::render::one_line(r.detail.as_deref().unwrap_or_default()).into_owned();
            outln!(
                "{:<5} {:<16} {:<11} {:<8} {detail}",
                r.seq,
                r.actor.to_string(),
                r.action.as_str(),
                r.outcome.as_str()
            );
        }
    }
    section("libos audit verify");
    cmd::audit::run(&ctx, &audit_args(Some(AuditAction::Verify { expect_head: None, json: false }))).await?;
    outln!();
    outln!("Look around yourself:");
    outln!("  export LIBOS_DB={location}");
    outln!("  cargo run -p libos-cli -- ps --all --tree");
    outln!("  cargo run -p libos-cli -- logs {root}");
    outln!("  cargo run -p libos-cli -- inbox {root}");
    outln!("  cargo run -p libos-cli -- audit");
    outln!("  cargo run -p libos-cli -- serve       # the same store in the browser console");
    Ok(())
}

fn audit_args(action: Option<AuditAction>) -> AuditArgs {
    AuditArgs { action, ..AuditArgs::default() }
}

fn section(title: &str) {
    outln!();
    outln!("== {title}");
}
