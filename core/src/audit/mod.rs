//! The audit log: one append-only, hash-chained table.
//!
//! A record's hash is `sha256(prev_hash || canonical(record))`, where the
//! canonical form is compact JSON with sorted keys over every field except the
//! two hashes. Arguments are stored canonical and bounded ([`ARGS_LIMIT`]) with
//! the sha256 of the full canonical text, so a huge argument never bloats the
//! log yet stays provable. `verify` (in [`verify`]) recomputes everything;
//! [`trace`] reads a process's quanta back from its records.

mod action;
mod record;
pub mod trace;
pub mod verify;

pub use action::{AuditAction, AuditDecision, BadField, KernelAction};
pub use record::{
    ARGS_LIMIT, AuditDraft, AuditFilter, AuditKind, AuditRecord, AuditRow, GENESIS, Outcome, bound_args,
    canonical_bytes, chain_hash, sha256_hex,
};
pub use verify::{ChainBreak, VerifyReport};

/// The audit table's columns, in the order the store reads and writes them
/// (a record's fields; `grant_id` holds [`AuditRecord::grant`]).
pub const COLUMNS: [&str; 15] = [
    "seq",
    "at",
    "actor",
    "kind",
    "action",
    "pid",
    "args",
    "args_sha256",
    "decision",
    "grant_id",
    "outcome",
    "result_digest",
    "detail",
    "prev_hash",
    "hash",
];
