//! Embedding libos in an experiment: N agents on a model, and what each
//! of them came to.
//!
//! ```text
//! cargo run -p libos-tests --example hundred_agents [AGENTS]                        # the scripted model
//! cargo run -p libos-tests --example hundred_agents 5 --config libos.toml [--profile NAME]  # a real one
//! ```
//!
//! Without `--config` (or `LIBOS_CONFIG`), every agent plays a script, so
//! the run needs no network and its results are known in advance (the test
//! suite runs it so). With a configuration, the agents call the model of
//! its profile `--profile` (or `LIBOS_PROFILE`; default `default`), a
//! `[models.NAME]` section exactly as `libos` reads it.
//!
//! The steps an experiment takes, in order:
//! 1. open a kernel (here in memory; `Kernel::open` for a file store),
//! 2. register the images the agents run (the shipped ones here),
//! 3. spawn processes with their grants and budgets,
//! 4. run a scheduler with a model until nothing is runnable,
//! 5. read each agent's end (its exit code and result, or why it failed),
//!    its usage, the audit log, and verify the chain.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use libos_images::ImageSet;
use libos_kernel::budget::Budget;
use libos_kernel::{Actor, AuditFilter, Kernel, Pid, ProcState, ProcessFilter, SpawnSpec};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{Config, ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel};

/// Every scripted agent: look around, write a note, remember it, finish.
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

/// The scripted answer every agent ends with.
pub const SCRIPTED_RESULT: &str = "looked around and took a note";

/// Which model the agents run on.
#[derive(Debug, Clone)]
pub enum Model {
    /// [`SCRIPT`], for every agent.
    Scripted,
    /// A profile of a `libos.toml`.
    Profile {
        /// The configuration file.
        config: PathBuf,
        /// The `[models.NAME]` to use.
        profile: String,
    },
}

/// What one agent came to.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentResult {
    /// Its pid.
    pub pid: Pid,
    /// Its goal.
    pub goal: String,
    /// How it ended (`Exited { code, result }`, `Failed { kind, error }`,
    /// ...), or where it stopped if it did not.
    pub end: ProcState,
    /// Quanta it ran.
    pub quanta: u64,
    /// Tokens in and out.
    pub tokens: u64,
}

impl AgentResult {
    /// The value it exited with, if it exited.
    pub fn result(&self) -> Option<&str> {
        match &self.end {
            ProcState::Exited { result, .. } => Some(result),
            _ => None,
        }
    }
}

/// What the run came to.
#[derive(Debug)]
pub struct Summary {
    /// Each agent, in pid order.
    pub agents: Vec<AgentResult>,
    /// Quanta committed.
    pub quanta: u64,
    /// Tool calls, summed over the agents.
    pub tool_calls: u64,
    /// Model calls, summed over the agents.
    pub model_calls: u64,
    /// Audit records written.
    pub audit_records: usize,
    /// Whether `audit verify` found the chain intact.
    pub audit_intact: bool,
    /// Wall time of the scheduler run, in milliseconds.
    pub run_ms: u128,
}

impl Summary {
    /// How many agents exited with code 0.
    pub fn exited(&self) -> usize {
        self.agents.iter().filter(|a| matches!(a.end, ProcState::Exited { code: 0, .. })).count()
    }
}

/// The router for `model`: the script for every profile, or the chosen
/// profile of a configuration for every image.
fn router(model: &Model) -> anyhow::Result<ModelRouter> {
    Ok(match model {
        Model::Scripted => {
            let script = Script::parse("hundred_agents", SCRIPT).map_err(anyhow::Error::msg)?;
            ModelRouter::default().with_override(Arc::new(ScriptedModel::new("scripted", script)))
        }
        Model::Profile { config, profile } => {
            let config = Config::load(Some(config), &libos_runtime::config::process_env).map_err(anyhow::Error::msg)?;
            let router = ModelRouter::from_config(&config);
            let chosen = router.get(profile).map_err(anyhow::Error::msg)?;
            router.with_override(chosen)
        }
    })
}

/// Runs `agents` agents on `model` until none can run, and reports each.
pub async fn run(agents: usize, model: Model) -> anyhow::Result<Summary> {
    let workspace = tempfile::tempdir()?;
    std::fs::write(workspace.path().join("notes.txt"), "a file to look at\n")?;
    // 1. A kernel: an in-memory store for a throwaway experiment.
    let kernel = Kernel::in_memory()?;
    // 2. The image the agents run, registered by content.
    let images = ImageSet::shipped()?;
    let assistant = images.get("assistant")?;
    let digest = kernel.register_image(&assistant.name, &assistant.version, &assistant.source)?;
    // 3. The processes, each with its image's grants and a small budget
    //    (a real model that never chooses `exit` stops after 8 quanta).
    let mut budget: Budget = assistant.budget;
    budget.set_from("quanta=8").map_err(anyhow::Error::msg)?;
    for i in 0..agents {
        let spec = SpawnSpec {
            image: digest.clone(),
            goal: format!("agent {i}: list the workspace with list_dir, then exit with one line saying what is there"),
            workspace: workspace.path().to_path_buf(),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget,
        };
        kernel.spawn_with_grants(&spec, &assistant.grants)?;
    }
    // 4. A model for every profile, and a scheduler until idle.
    let env = quantum::env(kernel.clone(), router(&model)?, QuantumPolicy::default());
    let concurrency = if matches!(model, Model::Scripted) { 16 } else { 4 };
    let config = SchedulerConfig { until_idle: true, concurrency, ..SchedulerConfig::default() };
    let started = Instant::now();
    let summary = Scheduler::new(env, config).run(std::future::pending()).await?;
    let run_ms = started.elapsed().as_millis();
    // 5. Each agent's end and usage, and the audit log.
    let procs = kernel.processes(ProcessFilter::All)?;
    let agents = procs
        .iter()
        .map(|p| AgentResult {
            pid: p.pid,
            goal: p.goal.clone(),
            end: p.state.clone(),
            quanta: p.usage.quanta,
            tokens: p.usage.tokens_in + p.usage.tokens_out,
        })
        .collect();
    Ok(Summary {
        agents,
        quanta: summary.quanta,
        tool_calls: procs.iter().map(|p| p.usage.tool_calls).sum(),
        model_calls: procs.iter().map(|p| p.usage.model_calls).sum(),
        audit_records: kernel.audit(&AuditFilter::default())?.len(),
        audit_intact: kernel.audit_verify(None)?.ok(),
        run_ms,
    })
}

/// `[AGENTS] [--config FILE] [--profile NAME]`, with `LIBOS_CONFIG` and
/// `LIBOS_PROFILE` as defaults.
fn parse_args() -> anyhow::Result<(usize, Model)> {
    let mut agents = 100;
    let mut config = std::env::var_os("LIBOS_CONFIG").map(PathBuf::from);
    let mut profile = std::env::var("LIBOS_PROFILE").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(args.next().ok_or_else(|| anyhow::anyhow!("--config needs a file"))?.into()),
            "--profile" => profile = Some(args.next().ok_or_else(|| anyhow::anyhow!("--profile needs a name"))?),
            n => agents = n.parse().map_err(|_| anyhow::anyhow!("`{n}` is not a number of agents"))?,
        }
    }
    let model = match (config, profile) {
        (Some(config), profile) => Model::Profile { config, profile: profile.unwrap_or_else(|| "default".into()) },
        (None, Some(_)) => anyhow::bail!("--profile needs --config FILE (or LIBOS_CONFIG)"),
        (None, None) => Model::Scripted,
    };
    Ok((agents, model))
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    let (agents, model) = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let s = rt.block_on(run(agents, model))?;
    for a in &s.agents {
        let end = match a.result() {
            Some(result) => format!("{}: {}", a.end.name(), result.replace('\n', " ")),
            None => a.end.to_string(),
        };
        println!("pid {:<4} {:>2} quanta {:>6} tokens  {end}", a.pid, a.quanta, a.tokens);
    }
    println!("agents:        {} spawned, {} exited", s.agents.len(), s.exited());
    println!("quanta:        {} ({} model calls, {} tool calls)", s.quanta, s.model_calls, s.tool_calls);
    println!("audit:         {} records, chain {}", s.audit_records, if s.audit_intact { "intact" } else { "BROKEN" });
    println!("scheduler run: {} ms", s.run_ms);
    Ok(())
}
