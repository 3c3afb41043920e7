//! Read-side operations: processes, transcripts, model calls, the audit log.
//!
//! Whatever reads audit records by seq reads the sealed chain only. On
//! PostgreSQL, where records are chained after commit (`store::seal`),
//! [`Kernel::audit`], [`Kernel::leases`] and [`Kernel::audit_head`] first
//! seal what is committed, so a caller always finds the records of what
//! it just did (and a follower, the records of every commit it was told
//! of). [`Kernel::audit_verify`] does not: it reports what waits.

use super::Kernel;
use crate::audit::trace::{self, LeaseTrace};
use crate::audit::verify::Verifier;
use crate::audit::{AuditFilter, AuditRecord, VerifyReport};
use crate::error::KernelError;
use crate::ids::{AuditSeq, Pid};
use crate::process::{ProcessFilter, ProcessInfo};
use crate::quantum::{ModelCallRow, ParkedCall, RecentHistory, TranscriptEntry};

/// Chains shorter than this are verified on one connection: splitting them
/// costs more in connections and threads than it saves.
pub const PARALLEL_MIN_RECORDS: i64 = 20_000;

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

    /// What a quantum's prompt needs of a process's transcript: the newest
    /// `window` turns in full, up to `compact` before them without their
    /// results, and how many are older still. Read without an explicit
    /// transaction and without checking that the process exists.
    pub fn recent_history(&self, pid: Pid, window: usize, compact: usize) -> Result<RecentHistory, KernelError> {
        self.read_latest(|tx| tx.recent_history(pid, window, compact))
    }

    /// Every model call a process made, oldest first.
    pub fn model_calls(&self, pid: Pid) -> Result<Vec<ModelCallRow>, KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            tx.model_calls(pid)
        })
    }

    /// The model calls of one quantum of a process, oldest first.
    pub fn quantum_model_calls(&self, pid: Pid, quantum: u64) -> Result<Vec<ModelCallRow>, KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            tx.quantum_model_calls(pid, quantum)
        })
    }

    /// The call a process is parked on (waiting, or paused while waiting),
    /// if any: what it will run or complete when its wait ends.
    pub fn parked(&self, pid: Pid) -> Result<Option<ParkedCall>, KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            tx.parked(pid)
        })
    }

    /// What the audit log says of each lease of `pid`, oldest first (see
    /// [`crate::audit::trace`]).
    pub fn leases(&self, pid: Pid) -> Result<Vec<LeaseTrace>, KernelError> {
        self.seal_audit()?;
        self.read(|tx| {
            tx.process(pid)?;
            Ok(trace::leases(&tx.audit_query(&AuditFilter { pid: Some(pid), ..Default::default() })?))
        })
    }

    /// Audit records matching `filter`, oldest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, KernelError> {
        self.seal_audit()?;
        self.read(|tx| tx.audit_query(filter))
    }

    /// The last record's sequence number and hash (0 and the genesis hash when empty).
    pub fn audit_head(&self) -> Result<(AuditSeq, String), KernelError> {
        self.seal_audit()?;
        self.read(|tx| tx.audit_head())
    }

    /// Numbers and chains every committed audit record now. On PostgreSQL
    /// records are sealed after commit, by one elected sealer per store,
    /// within milliseconds; a reader that must see everything committed
    /// calls this first (the readers above do). Nothing to do on SQLite.
    pub fn seal_audit(&self) -> Result<(), KernelError> {
        self.inner.store.seal_pending()
    }

    /// Recomputes the whole chain. With `expect_head`, a chain that ends
    /// anywhere else is reported as truncated. Long chains in a file store
    /// are verified in parts on separate connections, one per core.
    pub fn audit_verify(&self, expect_head: Option<&str>) -> Result<VerifyReport, KernelError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let (head, _) = self.read(|tx| tx.audit_head())?;
        let parts = if head.get() < PARALLEL_MIN_RECORDS { 1 } else { cores };
        self.audit_verify_in_parts(expect_head, parts)
    }

    /// [`Kernel::audit_verify`] split into `parts` contiguous ranges of the
    /// chain (by the head seen at the start), each read on its own
    /// connection and thread and joined in order (in-memory stores, and
    /// chains shorter than `parts`, use one). With more than one part,
    /// records appended while it runs are left for the next verification.
    /// Records waiting for sealing (PostgreSQL) are checked against their
    /// digests and counted, in the same snapshot as the sealed chain.
    pub fn audit_verify_in_parts(&self, expect_head: Option<&str>, parts: usize) -> Result<VerifyReport, KernelError> {
        let (head, _) = self.read(|tx| tx.audit_head())?;
        let head = head.get();
        let parts = if head < parts as i64 || self.inner.store.path().is_none() { 1 } else { parts.max(1) };
        if parts == 1 {
            return self.read(|tx| {
                let mut verifier = Verifier::default();
                // Everything, including records appended since the head was read.
                tx.audit_scan(0, i64::MAX, &mut verifier)?;
                tx.audit_unsealed(|id, row, digest| {
                    verifier.unsealed(id, row, digest);
                    true
                })?;
                Ok(verifier.finish(expect_head))
            });
        }
        let size = (head + parts as i64 - 1) / parts as i64;
        let bounds: Vec<(i64, i64)> = (0..parts as i64).map(|i| (i * size, ((i + 1) * size).min(head))).collect();
        let store = &self.inner.store;
        let results: Vec<Result<Verifier, KernelError>> = std::thread::scope(|s| {
            let handles: Vec<_> = bounds
                .iter()
                .map(|&(after, upto)| {
                    s.spawn(move || {
                        let mut verifier = Verifier::starting_at(after + 1);
                        let scanned = store.read_on_new_connection(|tx| tx.audit_scan(after, upto, &mut verifier));
                        scanned.unwrap_or(Ok(())).map(|()| verifier)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        let mut joined: Option<Verifier> = None;
        for part in results {
            let part = part?;
            joined = Some(match joined {
                None => part,
                Some(before) => before.join(part),
            });
        }
        Ok(joined.unwrap_or_default().finish(expect_head))
    }
}
