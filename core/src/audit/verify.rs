//! Recomputing the chain.
//!
//! Records stream through a [`Verifier`] straight from the rows being read
//! (borrowed, never copied into owned records): each record's `seq` has no
//! gap, its `prev_hash` is the previous record's `hash`, and its `hash` is
//! the sha256 over its canonical bytes. Long chains are split into parts
//! verified on separate connections and threads, then joined in order.
//!
//! A store whose records are chained after commit (PostgreSQL, by its
//! sealer) also holds records waiting for sealing: each carries the
//! sha256 of its canonical bytes with seq 0 ([`unsealed_digest`]), which
//! [`Verifier::unsealed`] checks, and the report counts them.

use std::fmt;

use super::record::{AuditRow, GENESIS, canonical_bytes, chain_hash_matches, sha256_hex};
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
    /// How many committed records wait for sealing (numbering and chaining
    /// after commit, on PostgreSQL): not yet part of the chain, each
    /// checked against its own digest. Always 0 on SQLite.
    pub unsealed: u64,
}

impl VerifyReport {
    /// True when the chain is intact.
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// Streaming verifier: feed records in `seq` order, then [`Verifier::finish`].
///
/// A verifier may cover only a part of the chain ([`Verifier::starting_at`]):
/// it then takes its first record's `prev_hash` on trust, and
/// [`Verifier::join`] checks that link against the part before it. So
/// contiguous parts can be verified on separate threads and joined in order.
pub struct Verifier {
    expected_seq: i64,
    /// The hash the next record must name as its `prev_hash`; `None` until
    /// the first record of a part that starts mid-chain.
    prev_hash: Option<String>,
    /// The first record seen: its seq and `prev_hash` (for joining).
    first: Option<(i64, String)>,
    records: u64,
    broken: Option<ChainBreak>,
    unsealed: u64,
    buf: Vec<u8>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            expected_seq: 1,
            prev_hash: Some(GENESIS.to_string()),
            first: None,
            records: 0,
            broken: None,
            unsealed: 0,
            buf: Vec::with_capacity(512),
        }
    }
}

fn moved(found: i64, expected: i64) -> String {
    format!("sequence number is {found} where {expected} was expected (a record was deleted, inserted or moved)")
}

impl Verifier {
    /// A verifier for the part of the chain starting at `seq`.
    pub fn starting_at(seq: i64) -> Verifier {
        if seq <= 1 {
            return Verifier::default();
        }
        Verifier { expected_seq: seq, prev_hash: None, ..Verifier::default() }
    }

    /// Checks the next record; false once the chain is broken (stop reading).
    pub fn feed(&mut self, r: &AuditRow<'_>) -> bool {
        if self.broken.is_some() {
            return false;
        }
        if self.first.is_none() {
            self.first = Some((r.seq, r.prev_hash.to_string()));
        }
        let problem = if r.seq != self.expected_seq {
            Some(moved(r.seq, self.expected_seq))
        } else if self.prev_hash.as_deref().is_some_and(|p| p != r.prev_hash) {
            Some("prev_hash does not match the previous record's hash".to_string())
        } else {
            canonical_bytes(r, &mut self.buf);
            (!chain_hash_matches(r.prev_hash, &self.buf, r.hash))
                .then(|| "hash does not match the record's contents (the record was altered)".to_string())
        };
        if let Some(problem) = problem {
            self.broken = Some(ChainBreak { seq: AuditSeq(self.expected_seq), problem });
            return false;
        }
        self.expected_seq += 1;
        match &mut self.prev_hash {
            Some(p) => {
                p.clear();
                p.push_str(r.hash);
            }
            None => self.prev_hash = Some(r.hash.to_string()),
        }
        self.records += 1;
        true
    }

    /// Counts a record waiting for sealing (row `id`) and checks it against
    /// the digest it carries; false once something is broken. Fed after the
    /// sealed chain, in the order the records will be sealed.
    pub fn unsealed(&mut self, id: i64, r: &AuditRow<'_>, digest: Option<&str>) -> bool {
        self.unsealed += 1;
        if self.broken.is_some() {
            return false;
        }
        if digest != Some(unsealed_digest(r, &mut self.buf).as_str()) {
            self.broken = Some(ChainBreak {
                seq: AuditSeq(self.expected_seq),
                problem: format!(
                    "record {id}, waiting for sealing, does not match its digest (the record was altered before it was sealed)"
                ),
            });
            return false;
        }
        true
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
        let problem = if seq.get() == self.expected_seq { problem } else { moved(seq.get(), self.expected_seq) };
        self.broken = Some(ChainBreak { seq: AuditSeq(self.expected_seq), problem });
    }

    /// This part followed by `next`, the part that starts where this one ends.
    pub fn join(mut self, next: Verifier) -> Verifier {
        if self.broken.is_some() {
            return self;
        }
        match &next.first {
            None if next.broken.is_none() => return self,
            None => {}
            Some((seq, prev)) => {
                let problem = if *seq != self.expected_seq {
                    Some(moved(*seq, self.expected_seq))
                } else if self.prev_hash.as_deref() != Some(prev.as_str()) {
                    Some("prev_hash does not match the previous record's hash".to_string())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    self.broken = Some(ChainBreak { seq: AuditSeq(self.expected_seq), problem });
                    return self;
                }
            }
        }
        // `next` starts exactly where this part ends and links to it.
        if next.first.is_none() {
            // It broke on its very first record before seeing it (unreadable).
            self.broken = next.broken;
            return self;
        }
        self.records += next.records;
        self.unsealed += next.unsealed;
        self.expected_seq = next.expected_seq;
        if next.prev_hash.is_some() {
            self.prev_hash = next.prev_hash;
        }
        self.broken = next.broken;
        self
    }

    /// The report; `expect_head` (a hash the operator kept) also detects a truncated tail.
    pub fn finish(self, expect_head: Option<&str>) -> VerifyReport {
        let head = self.prev_hash.unwrap_or_else(|| GENESIS.to_string());
        let mut broken = self.broken;
        if broken.is_none()
            && let Some(expected) = expect_head
            && !expected.eq_ignore_ascii_case(&head)
        {
            broken = Some(ChainBreak {
                seq: AuditSeq(self.expected_seq),
                problem: format!(
                    "the chain ends at head {} but {} was expected (records were removed from the end, or the head is from another store)",
                    head, expected
                ),
            });
        }
        VerifyReport { records: self.records, head, broken, unsealed: self.unsealed }
    }
}

/// The digest a record waiting for sealing carries: the sha256 of its
/// canonical bytes with seq 0 (its seq is not known until it is sealed).
/// `buf` is scratch space.
pub fn unsealed_digest(r: &AuditRow<'_>, buf: &mut Vec<u8>) -> String {
    canonical_bytes(&AuditRow { seq: 0, ..*r }, buf);
    sha256_hex(buf)
}
