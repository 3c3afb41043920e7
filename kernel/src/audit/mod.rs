//! The audit log: one append-only, hash-chained table.
//!
//! A record's hash is `sha256(prev_hash || canonical(record))`, where the
//! canonical form is compact JSON with sorted keys over every field except the
//! two hashes. Arguments are stored canonical and bounded ([`ARGS_LIMIT`]) with
//! the sha256 of the full canonical text, so a huge argument never bloats the
//! log yet stays provable. `verify` (in [`verify`]) recomputes everything.

mod record;
pub mod verify;

pub use record::{
    ARGS_LIMIT, AuditDraft, AuditFilter, AuditKind, AuditRecord, AuditRow, GENESIS, Outcome, bound_args,
    canonical_bytes, chain_hash, sha256_hex,
};
pub use verify::{ChainBreak, VerifyReport};
