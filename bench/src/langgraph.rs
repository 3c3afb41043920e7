//! `langgraph AGENTS CALLS`: the side-by-side run against LangGraph.
//!
//! The workload, the bench program's own copy: AGENTS agents at once, each
//! making CALLS model calls, the first CALLS - 1 of them a call of a `now`
//! tool and the last a final answer (libos: `exit`), with an instant
//! in-process model on both sides. libos runs it on its SQLite file store
//! (every quantum committed and audited) under one scheduler; LangGraph
//! runs `bench/langgraph/side_by_side.py` (a ReAct graph with a ToolNode),
//! once in memory and once checkpointing every step to an SQLite file (its
//! closest counterpart to a durable store). The figure is CPU time per
//! model call. LangGraph is installed, at pinned versions, into a venv
//! under `target/`; where PyPI cannot be reached the LangGraph half is
//! skipped with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig, ScriptedModel};

/// What the LangGraph half installs.
const PACKAGES: [&str; 4] =
    ["langgraph==1.2.24", "langchain-core==1.8.3", "langgraph-checkpoint-sqlite==3.1.2", "aiosqlite==0.22.1"];

/// One side's figures.
struct Side {
    name: String,
    wall_s: f64,
    cpu_s: f64,
    calls: u64,
}

impl Side {
    fn row(&self) -> String {
        format!(
            "| {} | {} | {:.2} s | {:.2} s | {:.0} us |",
            self.name,
            self.calls,
            self.wall_s,
            self.cpu_s,
            self.cpu_s * 1e6 / self.calls as f64
        )
    }
}

pub(crate) async fn side_by_side(agents: usize, calls: usize) -> anyhow::Result<()> {
    anyhow::ensure!(calls >= 1, "each agent makes at least one call");
    let mut sides = vec![libos_side(agents, calls, 16).await?, libos_side(agents, calls, agents).await?];
    let mut skipped = None;
    match venv() {
        Ok(python) => {
            for durable in [false, true] {
                sides.push(langgraph_side(&python, agents, calls, durable)?);
            }
        }
        Err(e) => skipped = Some(e),
    }
    println!("scenario: side by side with LangGraph");
    println!("machine: {}", super::machine());
    println!(
        "parameters: {agents} agents x {calls} model calls ({} `now` tool calls and a final answer each), instant in-process model",
        calls - 1
    );
    println!("| runtime | model calls | wall | CPU | CPU per model call |");
    println!("|---|---|---|---|---|");
    for side in &sides {
        println!("{}", side.row());
    }
    if let Some(e) = skipped {
        println!("skipped: the LangGraph half ({e:#})");
    }
    Ok(())
}

/// libos: AGENTS assistant processes on an SQLite file store, each playing
/// the script, under one scheduler of `concurrency` until idle.
async fn libos_side(agents: usize, calls: usize, concurrency: usize) -> anyhow::Result<Side> {
    let dir = tempfile::tempdir()?;
    let kernel = super::durable_kernel(dir.path(), agents, |i| format!("agent {i}: tell the time"))?;
    let script = super::scripted::script(calls);
    let router = ModelRouter::default().with_override(Arc::new(ScriptedModel::new("scripted", script)));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let config = SchedulerConfig { until_idle: true, concurrency, ..SchedulerConfig::default() };
    let (cpu, wall) = (super::cpu_time(), Instant::now());
    let summary = Scheduler::new(env, config).run(std::future::pending()).await?;
    let (wall, cpu) = (wall.elapsed(), super::cpu_time().saturating_sub(cpu));
    anyhow::ensure!(summary.finished.len() == agents, "{} of {agents} agents finished", summary.finished.len());
    Ok(Side {
        name: format!("libos, SQLite store (durable, audited), concurrency {concurrency}"),
        wall_s: wall.as_secs_f64(),
        cpu_s: cpu.as_secs_f64(),
        calls: summary.quanta,
    })
}

fn langgraph_side(python: &Path, agents: usize, calls: usize, durable: bool) -> anyhow::Result<Side> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("langgraph/side_by_side.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(agents.to_string()).arg(calls.to_string());
    if durable {
        cmd.arg("--durable");
    }
    let out = cmd.output().with_context(|| format!("cannot run {}", python.display()))?;
    anyhow::ensure!(out.status.success(), "side_by_side.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("side_by_side.py printed no JSON")?;
    let num = |k: &str| v[k].as_f64().with_context(|| format!("side_by_side.py printed no {k}"));
    Ok(Side {
        name: if durable { "LangGraph, AsyncSqliteSaver checkpoints".into() } else { "LangGraph, in memory".into() },
        wall_s: num("wall_s")?,
        cpu_s: num("cpu_s")?,
        calls: num("model_calls")? as u64,
    })
}

/// The venv with LangGraph, made on first use under `target/`.
fn venv() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/langgraph-venv");
    let python = dir.join("bin/python");
    let ready = dir.join(".installed");
    if std::fs::read_to_string(&ready).is_ok_and(|t| t == PACKAGES.join(" ")) {
        return Ok(python);
    }
    let status = Command::new("python3").arg("-m").arg("venv").arg(&dir).status().context("cannot run python3")?;
    anyhow::ensure!(status.success(), "python3 -m venv {} failed", dir.display());
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(PACKAGES)
        .output()
        .context("cannot run pip")?;
    anyhow::ensure!(
        out.status.success(),
        "pip could not install LangGraph (is PyPI reachable?): {}",
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
    );
    std::fs::write(&ready, PACKAGES.join(" "))?;
    Ok(python)
}
