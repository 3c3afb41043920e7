//! `appends WRITERS COMMITS_EACH [normal|full]`: issue 18's durable audit
//! appends per second, from many writers committing at once (group commit).

use std::time::Instant;

use libos_kernel::ipc::{MessageKind, NewMessage};
use libos_kernel::{Actor, Durability};

use super::{durable_kernel_with, machine};

/// `writers` threads each commit `each` operator messages to their own
/// process as fast as they can: every commit is one transaction's worth of
/// work with one audit record (the `send`). Group commit shares
/// transactions among the writers that arrive together; the figure is the
/// audit records appended per second of wall time, and the writes per
/// transaction the store reports.
pub(crate) fn appends(writers: usize, each: usize, durability: Durability) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = durable_kernel_with(dir.path(), writers, |i| format!("inbox {i}"), durability)?;
    let pids: Vec<_> = kernel.processes(libos_kernel::ProcessFilter::All)?.into_iter().map(|p| p.pid).collect();
    let (head, _) = kernel.audit_head()?;
    let stats = kernel.group_stats();
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let running: Vec<_> = pids
            .iter()
            .map(|&pid| {
                let kernel = kernel.clone();
                s.spawn(move || -> anyhow::Result<()> {
                    for i in 0..each {
                        let m = NewMessage {
                            to: pid,
                            body: format!("note {i}"),
                            kind: MessageKind::Normal,
                            channel: None,
                            correlation_id: None,
                            reply_to: None,
                        };
                        kernel.send(&m, &Actor::operator())?;
                    }
                    Ok(())
                })
            })
            .collect();
        for r in running {
            r.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        Ok(())
    })?;
    let wall = started.elapsed();
    let records = kernel.audit_head()?.0.get() - head.get();
    let (transactions, writes) = match (stats, kernel.group_stats()) {
        (Some(a), Some(b)) => (b.transactions - a.transactions, b.writes - a.writes),
        _ => (0, 0),
    };
    let report = kernel.audit_verify(None)?;
    println!("scenario: durable audit appends, many writers at once");
    println!("machine: {}", machine());
    println!("store: SQLite file, WAL, synchronous={}", durability.as_str().to_uppercase());
    println!("parameters: {writers} writers x {each} commits (an operator `send`, one audit record each)");
    println!(
        "result: {records} records in {:.2} s: {:.0} records/s; {transactions} transactions for {writes} writes ({:.1} writes per transaction); chain {}",
        wall.as_secs_f64(),
        records as f64 / wall.as_secs_f64(),
        writes as f64 / transactions.max(1) as f64,
        if report.ok() { "intact" } else { "BROKEN" },
    );
    Ok(())
}
