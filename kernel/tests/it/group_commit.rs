//! Group commit on SQLite: quanta that commit at once share one
//! transaction, each still atomic, fenced by its generation, and with its
//! audit records contiguous in the one chain.

use libos_kernel::{Actor, AuditFilter, AuditSeq, GroupStats, Kernel, KernelError, Next, Pid, ProcState};
use pretty_assertions::assert_eq;

use crate::support::{commit, file_kernel, lease_one, spawn};

/// Writers queued behind SQLite's write lock (held by another connection)
/// commit together once it is released: one transaction for all of them.
/// One of them is stale (its process was killed after the lease): it
/// alone is refused and leaves nothing, the others' commits stand, each
/// with its two records side by side, and the chain verifies.
fn queued_commits_share_one_transaction_and_a_stale_one_fails_alone() {
    const N: usize = 6;
    let (_dir, kernel, path) = file_kernel();
    let pids: Vec<Pid> = (0..N).map(|i| spawn(&kernel, &format!("g{i}"))).collect();
    let leases: Vec<_> = (0..N).map(|_| lease_one(&kernel)).collect();
    let stale = leases[2].pid;
    kernel.kill(stale, Actor::operator(), "stop").unwrap();
    let head = kernel.audit_head().unwrap().0;
    let before = stats(&kernel);

    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let results = std::thread::scope(|s| {
        let running: Vec<_> = leases
            .iter()
            .map(|lease| {
                let kernel = &kernel;
                s.spawn(move || (lease.pid, kernel.commit_quantum(lease, &commit("now", "{}", Next::Continue))))
            })
            .collect();
        // One writer waits for SQLite's lock holding the connection; the
        // others queue for the connection behind it.
        while stats(&kernel).waiting < N - 1 {
            std::thread::yield_now();
        }
        holder.execute_batch("COMMIT").unwrap();
        running.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>()
    });

    let outcomes: Vec<(Pid, Result<ProcState, String>)> = results
        .into_iter()
        .map(|(pid, r)| match r {
            Ok(receipt) => (pid, Ok(receipt.state)),
            Err(KernelError::Stale { .. }) => (pid, Err("stale".to_string())),
            Err(e) => (pid, Err(e.to_string())),
        })
        .collect();
    let expected: Vec<(Pid, Result<ProcState, String>)> = pids
        .iter()
        .map(|&pid| {
            (pid, if pid == stale { Err("stale".to_string()) } else { Ok(ProcState::Runnable { not_before: None }) })
        })
        .collect();
    assert_eq!(outcomes, expected);

    let after = stats(&kernel);
    assert_eq!(
        (after.transactions - before.transactions, after.writes - before.writes),
        (1, N as u64),
        "every queued commit in one transaction"
    );

    // The new records, grouped by the process they belong to, in chain order.
    let records: Vec<_> =
        kernel.audit(&AuditFilter::default()).unwrap().into_iter().filter(|r| r.seq.get() > head.get()).collect();
    let mut blocks: Vec<(Option<Pid>, Vec<String>)> = Vec::new();
    for r in &records {
        let line = format!("{} {} {} {}", r.actor, r.kind, r.action, r.outcome);
        match blocks.last_mut() {
            Some((pid, lines)) if *pid == r.pid => lines.push(line),
            _ => blocks.push((r.pid, vec![line])),
        }
    }
    let mut seen: Vec<Pid> = blocks.iter().filter_map(|(pid, _)| *pid).collect();
    seen.sort();
    let committed: Vec<Pid> = pids.iter().copied().filter(|&p| p != stale).collect();
    assert_eq!(seen, committed, "one contiguous run of records per committed quantum, none for the stale one");
    for (pid, lines) in &blocks {
        let pid = pid.unwrap();
        assert_eq!(lines, &vec![format!("pid:{pid} tool now ok"), "kernel state yield ok".to_string()]);
    }
    let seqs: Vec<AuditSeq> = records.iter().map(|r| r.seq).collect();
    let gapless: Vec<AuditSeq> = (1..=records.len() as i64).map(|i| AuditSeq(head.get() + i)).collect();
    assert_eq!(seqs, gapless);
    let report = kernel.audit_verify(None).unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(kernel.transcript(stale, None).unwrap().1, 0, "the stale commit left no transcript entry");
}

fn stats(kernel: &Kernel) -> GroupStats {
    kernel.group_stats().expect("an SQLite store")
}

libos_kernel::tests!(sync: queued_commits_share_one_transaction_and_a_stale_one_fails_alone);
