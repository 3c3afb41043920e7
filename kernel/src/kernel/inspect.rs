//! Read-side operations: processes, transcripts, model calls, the audit log.

use super::Kernel;
use crate::audit::verify::Verifier;
use crate::audit::{AuditFilter, AuditRecord, VerifyReport};
use crate::error::KernelError;
use crate::ids::{AuditSeq, Pid};
use crate::process::{ProcessFilter, ProcessInfo};
use crate::quantum::{ModelCallRow, TranscriptEntry};

/// Records read per batch while verifying.
const VERIFY_BATCH: usize = 65_536;

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
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.read(|tx| {
            let mut verifier = Verifier::default();
            let mut batch = Vec::with_capacity(VERIFY_BATCH);
            let mut after = 0;
            loop {
                let unreadable = tx.audit_batch(after, VERIFY_BATCH, &mut batch)?;
                verifier.feed(&batch, threads);
                if let Some((seq, problem)) = unreadable {
                    verifier.unreadable(seq, problem);
                    break;
                }
                let Some(last) = batch.last() else { break };
                after = last.seq.get();
                if batch.len() < VERIFY_BATCH {
                    break;
                }
            }
            Ok(verifier.finish(expect_head))
        })
    }
}
