//! Read-side operations: processes, transcripts, model calls, the audit log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use super::Kernel;
use crate::audit::verify::Verifier;
use crate::audit::{AuditFilter, AuditRecord, VerifyReport};
use crate::error::KernelError;
use crate::ids::{AuditSeq, Pid};
use crate::process::{ProcessFilter, ProcessInfo};
use crate::quantum::{ModelCallRow, TranscriptEntry};

/// Records read per batch while verifying: small enough that reading the
/// next batch overlaps hashing this one, large enough to amortise the handoff.
const VERIFY_BATCH: usize = 8_192;

/// A record that could not be read, with why (see `Tx::audit_batch`).
type Unreadable = Option<(AuditSeq, String)>;

impl Kernel {
    /// One process.
    pub fn process(&self, pid: Pid) -> Result<ProcessInfo, KernelError> {
        self.read(|tx| tx.process(pid))
    }

    /// Processes in pid order.
    pub fn processes(&self, filter: ProcessFilter) -> Result<Vec<ProcessInfo>, KernelError> {
        self.read(|tx| tx.processes(filter))
    }

    /// The last `limit` transcript entries (all with `None`), oldest first, and how many there are in all.
    pub fn transcript(&self, pid: Pid, limit: Option<usize>) -> Result<(Vec<TranscriptEntry>, u64), KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            tx.transcript(pid, limit)
        })
    }

    /// Every model call a process made, oldest first.
    pub fn model_calls(&self, pid: Pid) -> Result<Vec<ModelCallRow>, KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            tx.model_calls(pid)
        })
    }

    /// Audit records matching `filter`, oldest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, KernelError> {
        self.read(|tx| tx.audit_query(filter))
    }

    /// The last record's sequence number and hash (0 and the genesis hash when empty).
    pub fn audit_head(&self) -> Result<(AuditSeq, String), KernelError> {
        self.read(|tx| tx.audit_head())
    }

    /// Recomputes the whole chain from one consistent snapshot. With
    /// `expect_head`, a chain that ends anywhere else is reported as truncated.
    pub fn audit_verify(&self, expect_head: Option<&str>) -> Result<VerifyReport, KernelError> {
        // Reading and hashing overlap: this thread reads batches from the
        // snapshot while a second one checks the previous batch (hashing on
        // the remaining cores), and hands the emptied vector back for reuse.
        let hash_threads = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1);
        self.read(|tx| {
            let broken = AtomicBool::new(false);
            let broken = &broken;
            std::thread::scope(|s| {
                let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<AuditRecord>, Unreadable)>(1);
                let (empty_tx, empty_rx) = mpsc::channel::<Vec<AuditRecord>>();
                let hasher = s.spawn(move || {
                    let mut verifier = Verifier::default();
                    for (batch, unreadable) in full_rx {
                        verifier.feed(&batch, hash_threads);
                        if let Some((seq, problem)) = unreadable {
                            verifier.unreadable(seq, problem);
                        }
                        broken.store(verifier.is_broken(), Ordering::Relaxed);
                        let _ = empty_tx.send(batch);
                    }
                    verifier
                });
                let mut after = 0;
                let read = loop {
                    if broken.load(Ordering::Relaxed) {
                        break Ok(());
                    }
                    let mut batch = empty_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(VERIFY_BATCH));
                    let unreadable = match tx.audit_batch(after, VERIFY_BATCH, &mut batch) {
                        Ok(u) => u,
                        Err(e) => break Err(e),
                    };
                    let last = batch.last().map(|r| r.seq.get());
                    let done = unreadable.is_some() || batch.len() < VERIFY_BATCH;
                    if full_tx.send((batch, unreadable)).is_err() {
                        break Ok(());
                    }
                    match last {
                        Some(l) if !done => after = l,
                        _ => break Ok(()),
                    }
                };
                drop(full_tx);
                let verifier = hasher.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                read.map(|()| verifier.finish(expect_head))
            })
        })
    }
}
