//! libos benchmarks. Each scenario prints the machine, its parameters and
//! its result; BENCHMARKS.md records them with the command that reproduces them.
//!
//! ```text
//! cargo run --release -p libos-bench -- quantum [PROCESSES] [QUANTA_EACH]
//! cargo run --release -p libos-bench -- verify [RECORDS]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use libos_images::ImageSet;
use libos_kernel::{Actor, Kernel, OpenMode, SchedulerId, SpawnSpec, StoreLocation};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ChatModel, ChatRequest, ChatResponse, ModelError, ModelRouter, RawToolCall};

/// A model that answers instantly with a call to `now`: measures everything but the model.
struct InstantModel;

#[async_trait]
impl ChatModel for InstantModel {
    fn profile(&self) -> &str {
        "instant"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        Ok(ChatResponse {
            model: "instant".into(),
            content: None,
            tool_calls: vec![RawToolCall {
                id: format!("call_{}", request.meta.call_index),
                name: "now".into(),
                arguments: "{}".into(),
            }],
            usage: Some(libos_runtime::model::ReportedUsage { input: 100, output: 10 }),
            raw: "{}".into(),
        })
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores, {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A durable store in `dir` with `n` spawned assistant processes (one transaction each).
fn durable_kernel(dir: &std::path::Path, n: usize, goal: impl Fn(usize) -> String) -> anyhow::Result<Kernel> {
    let kernel = Kernel::open(&StoreLocation::File(dir.join("bench.db")), OpenMode::Create)?;
    let images = ImageSet::shipped()?;
    let image = images.get("assistant")?;
    let digest = kernel.register_image(&image.name, &image.version, &image.source)?;
    for i in 0..n {
        kernel.spawn(&SpawnSpec {
            image: digest.clone(),
            goal: goal(i),
            workspace: dir.to_path_buf(),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
        })?;
    }
    Ok(kernel)
}

async fn quantum_overhead(processes: usize, each: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = durable_kernel(dir.path(), processes, |i| format!("benchmark process {i}"))?;
    let router = ModelRouter::default().with_override(Arc::new(InstantModel));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let owner = SchedulerId("bench".into());
    let total = processes * each;
    let mut samples = Vec::with_capacity(total);
    let started = Instant::now();
    for _ in 0..total {
        let t = Instant::now();
        let lease = kernel.lease(&owner, Duration::from_secs(60), 1, &[])?.pop().context("nothing to lease")?;
        quantum::run(env.clone(), lease).await?;
        samples.push(t.elapsed());
    }
    let wall = started.elapsed();
    samples.sort();
    println!("scenario: quantum overhead excluding the model");
    println!("machine: {}", machine());
    println!("store: SQLite file, WAL, synchronous=NORMAL ({})", dir.path().join("bench.db").display());
    println!(
        "parameters: {processes} processes x {each} quanta, instant model answering `now`, lease + quantum + commit per sample"
    );
    println!(
        "result: {total} quanta in {:.2} s ({:.0} quanta/s); p50 {} us, p90 {} us, p99 {} us, max {} us",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        percentile(&samples, 0.50).as_micros(),
        percentile(&samples, 0.90).as_micros(),
        percentile(&samples, 0.99).as_micros(),
        samples.last().map_or(0, |d| d.as_micros()),
    );
    Ok(())
}

fn verify_speed(records: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let fill = Instant::now();
    let kernel = durable_kernel(dir.path(), records, |i| {
        format!("process number {i} with an ordinary goal of a sentence or two")
    })?;
    let fill = fill.elapsed();
    let mut best = Duration::MAX;
    let mut report = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = kernel.audit_verify(None)?;
        best = best.min(t.elapsed());
        report = Some(r);
    }
    let report = report.context("no verification ran")?;
    anyhow::ensure!(report.ok(), "chain broken: {:?}", report.broken);
    println!("scenario: audit verify");
    println!("machine: {}", machine());
    println!("parameters: {records} records (spawn records, ~450 bytes canonical each), SQLite file store, best of 3");
    println!(
        "fill: {records} durable appends (one spawn transaction each) in {:.2} s ({:.0}/s)",
        fill.as_secs_f64(),
        records as f64 / fill.as_secs_f64()
    );
    println!(
        "result: verified {} records in {:.3} s = {:.0} records/s; head {}",
        report.records,
        best.as_secs_f64(),
        report.records as f64 / best.as_secs_f64(),
        report.head
    );
    Ok(())
}

fn arg(args: &[String], i: usize, default: usize) -> anyhow::Result<usize> {
    args.get(i).map_or(Ok(default), |a| a.parse().with_context(|| format!("`{a}` is not a number")))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("quantum") => rt.block_on(quantum_overhead(arg(&args, 1, 100)?, arg(&args, 2, 50)?)),
        Some("verify") => verify_speed(arg(&args, 1, 200_000)?),
        _ => anyhow::bail!("usage: libos-bench quantum [PROCESSES] [QUANTA_EACH] | verify [RECORDS]"),
    }
}
