//! `scripted AGENTS QUANTA`: the run an experiment makes, timed from Rust,
//! as `python/bench/overhead.py` times it from Python (issue 20).
//!
//! AGENTS assistant processes in an SQLite file store, each playing a
//! script of QUANTA - 1 `now` calls and an `exit`, under one scheduler of
//! concurrency 16 until idle. The figure is the scheduler run's wall time
//! per quantum; spawning is reported apart.

use std::sync::Arc;
use std::time::Instant;

use libos_runtime::model::scripted::{Agent, Step};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel};

/// The script every agent plays.
pub(crate) fn script(quanta: usize) -> Script {
    let call = |tool: &str, args: &str| Step { text: None, calls: vec![(tool.into(), args.into())], delay: None };
    let mut steps: Vec<Step> = (1..quanta).map(|_| call("now", "{}")).collect();
    steps.push(call("exit", r#"{"result":"done"}"#));
    Script { origin: "bench".into(), agents: vec![Agent { image: "assistant".into(), goal_contains: None, steps }] }
}

pub(crate) async fn scripted_run(agents: usize, quanta: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spawned = Instant::now();
    let kernel = super::durable_kernel(dir.path(), agents, |i| format!("agent {i}"))?;
    let spawn = spawned.elapsed();
    let router = ModelRouter::default().with_override(Arc::new(ScriptedModel::new("scripted", script(quanta))));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let config = SchedulerConfig { until_idle: true, concurrency: 16, ..SchedulerConfig::default() };
    let started = Instant::now();
    let summary = Scheduler::new(env, config).run(std::future::pending()).await?;
    let run = started.elapsed();
    anyhow::ensure!(summary.finished.len() == agents, "{} of {agents} agents finished", summary.finished.len());
    println!("scenario: scripted run from Rust (the same run as python/bench/overhead.py)");
    println!("machine: {}", super::machine());
    println!("parameters: {agents} agents x {quanta} quanta, scripted model, SQLite file store, concurrency 16");
    println!(
        "result: spawn {:.2} s; run {} quanta in {:.2} s: {:.1} us per quantum ({:.0} quanta/s)",
        spawn.as_secs_f64(),
        summary.quanta,
        run.as_secs_f64(),
        run.as_secs_f64() * 1e6 / summary.quanta as f64,
        summary.quanta as f64 / run.as_secs_f64()
    );
    Ok(())
}
