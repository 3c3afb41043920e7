//! Embedding libos in an experiment: a hundred agents on a scripted model.
//!
//! ```text
//! cargo run -p libos-tests --example hundred_agents [AGENTS]
//! ```
//!
//! The steps an experiment takes, in order:
//! 1. open a kernel (here in memory; `Kernel::open` for a file store),
//! 2. register the images the agents run (the shipped ones here),
//! 3. spawn processes with their grants and budgets,
//! 4. run a scheduler with a model (scripted here; `HttpModel` for a real
//!    endpoint) until nothing is runnable,
//! 5. read the results, the usage and the audit log, and verify the chain.

use std::sync::Arc;
use std::time::Instant;

use libos_images::ImageSet;
use libos_kernel::{Actor, AuditFilter, Kernel, ProcState, ProcessFilter, SpawnSpec};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel};

/// Every agent: look around, write a note, remember it, finish.
const SCRIPT: &str = r#"
[[agent]]
image = "assistant"

[[agent.step]]
tool = "list_dir"
args = { path = "." }

[[agent.step]]
tool = "memory_write"
args = { name = "seen", content = "the workspace is empty but for the notes", kind = "note" }

[[agent.step]]
say = "Record the work."
tool = "now"

[[agent.step]]
tool = "exit"
args = { result = "looked around and took a note" }
"#;

/// What the run came to.
#[derive(Debug)]
pub struct Summary {
    /// Processes spawned.
    pub processes: usize,
    /// How many exited normally.
    pub exited: usize,
    /// Quanta committed.
    pub quanta: u64,
    /// Tool calls and model calls, summed over the processes.
    pub tool_calls: u64,
    /// Model calls.
    pub model_calls: u64,
    /// Audit records written.
    pub audit_records: usize,
    /// Whether `audit verify` found the chain intact.
    pub audit_intact: bool,
    /// Wall time of the scheduler run, in milliseconds.
    pub run_ms: u128,
}

/// Runs `agents` scripted agents to completion and summarises the run.
pub async fn run(agents: usize) -> anyhow::Result<Summary> {
    let workspace = tempfile::tempdir()?;
    // 1. A kernel: an in-memory store for a throwaway experiment.
    let kernel = Kernel::in_memory()?;
    // 2. The image the agents run, registered by content.
    let images = ImageSet::shipped()?;
    let assistant = images.get("assistant")?;
    let digest = kernel.register_image(&assistant.name, &assistant.version, &assistant.source)?;
    // 3. The processes, each with its image's grants and budget.
    for i in 0..agents {
        let spec = SpawnSpec {
            image: digest.clone(),
            goal: format!("agent {i}: look around and take a note"),
            workspace: workspace.path().to_path_buf(),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget: assistant.budget,
        };
        kernel.spawn_with_grants(&spec, &assistant.grants)?;
    }
    // 4. A model for every profile, and a scheduler until idle.
    let script = Script::parse("hundred_agents", SCRIPT).map_err(anyhow::Error::msg)?;
    let router = ModelRouter::default().with_override(Arc::new(ScriptedModel::new("scripted", script)));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let config = SchedulerConfig { until_idle: true, concurrency: 16, ..SchedulerConfig::default() };
    let started = Instant::now();
    let summary = Scheduler::new(env, config).run(std::future::pending()).await?;
    let run_ms = started.elapsed().as_millis();
    // 5. Results, usage, the audit log.
    let procs = kernel.processes(ProcessFilter::All)?;
    let exited = procs.iter().filter(|p| matches!(p.state, ProcState::Exited { code: 0, .. })).count();
    let audit_records = kernel.audit(&AuditFilter::default())?.len();
    Ok(Summary {
        processes: procs.len(),
        exited,
        quanta: summary.quanta,
        tool_calls: procs.iter().map(|p| p.usage.tool_calls).sum(),
        model_calls: procs.iter().map(|p| p.usage.model_calls).sum(),
        audit_records,
        audit_intact: kernel.audit_verify(None)?.ok(),
        run_ms,
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    let agents = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| anyhow::anyhow!("`{n}` is not a number of agents"))?,
        None => 100,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let s = rt.block_on(run(agents))?;
    println!("agents:        {} spawned, {} exited", s.processes, s.exited);
    println!("quanta:        {} ({} model calls, {} tool calls)", s.quanta, s.model_calls, s.tool_calls);
    println!("audit:         {} records, chain {}", s.audit_records, if s.audit_intact { "intact" } else { "BROKEN" });
    println!("scheduler run: {} ms", s.run_ms);
    Ok(())
}
