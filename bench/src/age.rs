//! `age N`: issue 18's "flat with age": the cost of one quantum of one
//! process at quantum 10, 1,000, 10,000 ... of its life.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use libos_kernel::SchedulerId;
use libos_runtime::ModelRouter;
use libos_runtime::quantum::{self, QuantumPolicy};

use super::{NOW, durable_kernel, machine, percentile};

/// One process runs `quanta` quanta of the instant `now` model, each
/// timed (lease + quantum + commit); the p50 and p99 of the 100 quanta
/// up to each power of ten are printed, so a cost that grows with the
/// length of the transcript shows as a rising row.
pub(crate) async fn by_age(quanta: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = durable_kernel(dir.path(), 1, |_| "one long-lived process".to_string())?;
    let router = ModelRouter::default().with_override(Arc::new(NOW));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let owner = SchedulerId("bench".into());
    let mut samples = Vec::with_capacity(quanta);
    let started = Instant::now();
    for _ in 0..quanta {
        let t = Instant::now();
        let lease = kernel.lease(&owner, Duration::from_secs(60), 1, &[])?.pop().context("nothing to lease")?;
        quantum::run(env.clone(), lease).await?;
        samples.push(t.elapsed());
    }
    let wall = started.elapsed();
    println!("scenario: quantum cost by the age of its process");
    println!("machine: {}", machine());
    println!("store: SQLite file, WAL, synchronous=NORMAL");
    println!(
        "parameters: 1 process x {quanta} quanta, instant model answering `now`, lease + quantum + commit per sample"
    );
    println!("| quanta | p50 | p99 |");
    println!("|---|---|---|");
    let mut ats: Vec<usize> =
        std::iter::successors(Some(10usize), |a| a.checked_mul(10)).take_while(|a| *a <= quanta).collect();
    if ats.last() != Some(&quanta) {
        ats.push(quanta);
    }
    for at in ats {
        let mut window = samples[at.saturating_sub(100)..at].to_vec();
        window.sort();
        println!(
            "| {}..{at} | {} us | {} us |",
            at.saturating_sub(100) + 1,
            percentile(&window, 0.50).as_micros(),
            percentile(&window, 0.99).as_micros()
        );
    }
    println!("total: {quanta} quanta in {:.2} s", wall.as_secs_f64());
    Ok(())
}

/// A model that answers instantly with a `memory_write` of a new object each
/// call (`note-N`): fills a process's memory through its own syscalls.
struct NoteWriter;

#[async_trait::async_trait]
impl libos_runtime::ChatModel for NoteWriter {
    fn profile(&self) -> &str {
        "notes"
    }

    async fn complete(
        &self,
        request: &libos_runtime::ChatRequest,
    ) -> Result<libos_runtime::ChatResponse, libos_runtime::ModelError> {
        let i = request.meta.call_index;
        let args =
            format!(r#"{{"name":"note-{i}","content":"note number {i}: an ordinary line of text to remember"}}"#);
        Ok(libos_runtime::ChatResponse {
            model: "notes".into(),
            content: None,
            tool_calls: vec![libos_runtime::RawToolCall {
                id: format!("call_{i}"),
                name: "memory_write".into(),
                arguments: args,
            }],
            usage: Some(libos_runtime::model::ReportedUsage { input: 100, output: 10, ..Default::default() }),
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

/// What grows between measurements in [`by_size`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Growth {
    /// Unread messages in the measured process's inbox.
    Messages,
    /// Memory objects the measured process holds.
    Memory,
    /// Audit records in the store (other processes' spawns).
    Audit,
}

impl Growth {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Growth> {
        match text {
            "messages" => Ok(Growth::Messages),
            "memory" => Ok(Growth::Memory),
            "audit" => Ok(Growth::Audit),
            other => anyhow::bail!("unknown dimension {other:?} (messages, memory or audit)"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Growth::Messages => "unread messages in its inbox",
            Growth::Memory => "memory objects it holds",
            Growth::Audit => "audit records in the store",
        }
    }
}

/// `age-of DIMENSION LEVELS`: the cost of a quantum of one process (the
/// instant `now` model; lease + quantum + commit) as its inbox, its memory
/// or the audit log grows through each level (e.g. `10,1000,10000`); 200
/// quanta are timed at each level and their p50/p99 printed, so a cost that
/// grows with the size shows as a rising row.
pub(crate) async fn by_size(growth: Growth, levels: &[usize]) -> anyhow::Result<()> {
    const SAMPLES: usize = 200;
    let dir = tempfile::tempdir()?;
    let kernel = durable_kernel(dir.path(), 1, |_| "one process whose world grows".to_string())?;
    let pid = libos_kernel::Pid(1);
    let router = ModelRouter::default().with_override(Arc::new(NOW));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let notes = quantum::env(
        kernel.clone(),
        ModelRouter::default().with_override(Arc::new(NoteWriter)),
        QuantumPolicy::default(),
    );
    let owner = SchedulerId("bench".into());
    let lease = |kernel: &libos_kernel::Kernel| -> anyhow::Result<libos_kernel::Lease> {
        kernel.lease(&owner, Duration::from_secs(60), 1, &[])?.pop().context("nothing to lease")
    };
    let image = kernel.process(pid)?.image_digest;
    let mut size = 0usize;
    let mut rows = Vec::new();
    let started = Instant::now();
    for &level in levels {
        let fill = Instant::now();
        while size < level {
            match growth {
                Growth::Messages => {
                    let m = libos_kernel::ipc::NewMessage {
                        to: pid,
                        body: format!("message number {size}, one of many the process has not read"),
                        kind: libos_kernel::ipc::MessageKind::Normal,
                        channel: None,
                        correlation_id: None,
                        reply_to: None,
                    };
                    kernel.send(&m, &libos_kernel::Actor::operator())?;
                }
                Growth::Memory => {
                    quantum::run(notes.clone(), lease(&kernel)?).await?;
                }
                Growth::Audit => {
                    // Another process's spawn (one record), parked at once so
                    // the measured process stays the only runnable one.
                    let other = kernel.spawn(&libos_kernel::SpawnSpec {
                        image: image.clone(),
                        goal: format!("filler {size}"),
                        workspace: dir.path().to_path_buf(),
                        parent: None,
                        priority: 0,
                        actor: libos_kernel::Actor::operator(),
                        budget: libos_kernel::budget::Budget::unlimited(),
                    })?;
                    kernel.pause(other, libos_kernel::Actor::operator())?;
                }
            }
            size += match growth {
                Growth::Audit => 2,
                _ => 1,
            };
        }
        let fill = fill.elapsed();
        let mut window = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let t = Instant::now();
            quantum::run(env.clone(), lease(&kernel)?).await?;
            window.push(t.elapsed());
        }
        window.sort();
        let records = kernel.audit_head()?.0.get();
        rows.push((level, percentile(&window, 0.50), percentile(&window, 0.99), fill, records));
    }
    println!("scenario: quantum cost by the size of its world ({})", growth.name());
    println!("machine: {}", machine());
    println!("store: SQLite file, WAL, synchronous=NORMAL");
    println!(
        "parameters: 1 measured process, instant model answering `now`, {SAMPLES} quanta timed per level (lease + quantum + commit)"
    );
    println!("| {} | audit records | p50 | p99 | fill time |", growth.name());
    println!("|---|---|---|---|---|");
    for (level, p50, p99, fill, records) in rows {
        println!(
            "| {level} | {records} | {} us | {} us | {:.1} s |",
            p50.as_micros(),
            p99.as_micros(),
            fill.as_secs_f64()
        );
    }
    println!("total: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
