//! Recomputing the chain.
//!
//! Each record is checked on its own (its hash over its canonical bytes and its
//! stored `prev_hash`), which parallelises; the links between neighbours
//! (`prev_hash` equals the previous `hash`, `seq` has no gap) are checked in order.

use std::fmt;

use super::record::{AuditRecord, GENESIS, canonical_bytes, chain_hash_matches};
use crate::ids::AuditSeq;

/// The first place the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first bad record (for a truncated tail, the position after the last record).
    pub seq: AuditSeq,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "audit record {}: {}", self.seq, self.problem)
    }
}

/// The outcome of verifying the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many records were checked.
    pub records: u64,
    /// The hash of the last record ([`GENESIS`] for an empty log).
    pub head: String,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

impl VerifyReport {
    /// True when the chain is intact.
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// Streaming verifier: feed records in `seq` order, then [`Verifier::finish`].
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
    records: u64,
    broken: Option<ChainBreak>,
    buf: Vec<u8>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            expected_seq: 1,
            prev_hash: GENESIS.to_string(),
            records: 0,
            broken: None,
            buf: Vec::with_capacity(512),
        }
    }
}

impl Verifier {
    /// Checks a batch of consecutive records, hashing on up to `threads` threads.
    pub fn feed(&mut self, batch: &[AuditRecord], threads: usize) {
        if self.broken.is_some() || batch.is_empty() {
            return;
        }
        let bad_hash = first_bad_hash(batch, threads.max(1), &mut self.buf);
        for (i, r) in batch.iter().enumerate() {
            let problem = if r.seq.get() != self.expected_seq {
                Some(format!(
                    "sequence number is {} where {} was expected (a record was deleted, inserted or moved)",
                    r.seq, self.expected_seq
                ))
            } else if r.prev_hash != self.prev_hash {
                Some("prev_hash does not match the previous record's hash".to_string())
            } else if bad_hash == Some(i) {
                Some("hash does not match the record's contents (the record was altered)".to_string())
            } else {
                None
            };
            if let Some(problem) = problem {
                self.broken = Some(ChainBreak { seq: AuditSeq(self.expected_seq), problem });
                return;
            }
            self.expected_seq += 1;
            self.prev_hash.clone_from(&r.hash);
            self.records += 1;
        }
    }

    /// True once a break was found (later records need not be read).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Reports the record at `seq` as unreadable (a field of the wrong type),
    /// unless the chain already broke before it.
    pub fn unreadable(&mut self, seq: AuditSeq, problem: String) {
        if self.broken.is_some() {
            return;
        }
        let problem = if seq.get() == self.expected_seq {
            problem
        } else {
            format!(
                "sequence number is {seq} where {} was expected (a record was deleted, inserted or moved)",
                self.expected_seq
            )
        };
        self.broken = Some(ChainBreak { seq: AuditSeq(self.expected_seq), problem });
    }

    /// The report; `expect_head` (a hash the operator kept) also detects a truncated tail.
    pub fn finish(self, expect_head: Option<&str>) -> VerifyReport {
        let mut broken = self.broken;
        if broken.is_none()
            && let Some(expected) = expect_head
            && !expected.eq_ignore_ascii_case(&self.prev_hash)
        {
            broken = Some(ChainBreak {
                seq: AuditSeq(self.expected_seq),
                problem: format!(
                    "the chain ends at head {} but {} was expected (records were removed from the end, or the head is from another store)",
                    self.prev_hash, expected
                ),
            });
        }
        VerifyReport { records: self.records, head: self.prev_hash, broken }
    }
}

fn record_hash_ok(r: &AuditRecord, buf: &mut Vec<u8>) -> bool {
    canonical_bytes(r, buf);
    chain_hash_matches(&r.prev_hash, buf, &r.hash)
}

/// Index of the first record whose hash does not match its own contents.
fn first_bad_hash(batch: &[AuditRecord], threads: usize, buf: &mut Vec<u8>) -> Option<usize> {
    if threads == 1 || batch.len() < 1024 {
        return batch.iter().position(|r| !record_hash_ok(r, buf));
    }
    let chunk = batch.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                s.spawn(move || {
                    let mut buf = Vec::with_capacity(512);
                    part.iter().position(|r| !record_hash_ok(r, &mut buf)).map(|i| n * chunk + i)
                })
            })
            .collect();
        // Chunks are in order, so the first hit in order is the first bad record.
        handles.into_iter().filter_map(|h| h.join().ok().flatten()).min()
    })
}
