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
