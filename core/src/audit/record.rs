//! Audit record types and their canonical, hashable form.

use std::fmt;
use std::io::Write;

use sha2::{Digest, Sha256};

use super::action::{AuditAction, AuditDecision, BadField};
use crate::actor::Actor;
use crate::ids::{AuditSeq, GrantId, Pid};
use crate::time::Timestamp;

/// Canonical arguments longer than this many bytes are stored as a bounded summary.
pub const ARGS_LIMIT: usize = 4096;

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What kind of thing a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A process state transition.
    State,
    /// A tool call (dispatched, rejected, or failed).
    Tool,
    /// The intent record written before an external effect.
    Effect,
    /// An operator action (spawn, kill, ...).
    Operator,
    /// A kernel action not tied to one transition (recovery, image registration).
    Kernel,
}

impl AuditKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::State => "state",
            AuditKind::Tool => "tool",
            AuditKind::Effect => "effect",
            AuditKind::Operator => "operator",
            AuditKind::Kernel => "kernel",
        }
    }

    /// Inverse of [`AuditKind::as_str`].
    pub fn parse(s: &str) -> Option<AuditKind> {
        Some(match s {
            "state" => AuditKind::State,
            "tool" => AuditKind::Tool,
            "effect" => AuditKind::Effect,
            "operator" => AuditKind::Operator,
            "kernel" => AuditKind::Kernel,
            _ => return None,
        })
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an audited action came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Attempted and failed; the error went back to the model or operator.
    Error,
    /// Refused by a capability check.
    Denied,
    /// Model output refused before dispatch (unknown tool, bad JSON, bad args).
    Rejected,
    /// The process parked on it.
    Parked,
    /// An external effect started but its end was never recorded (crash).
    Unknown,
    /// An external effect is about to start (intent record).
    Pending,
}

impl Outcome {
    /// Every outcome, for help texts and parsing.
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Denied,
        Outcome::Rejected,
        Outcome::Parked,
        Outcome::Unknown,
        Outcome::Pending,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
            Outcome::Rejected => "rejected",
            Outcome::Parked => "parked",
            Outcome::Unknown => "unknown",
            Outcome::Pending => "pending",
        }
    }

    /// Inverse of [`Outcome::as_str`].
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record about to be appended: the store assigns seq, time and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    /// Who acted.
    pub actor: Actor,
    /// What kind of record.
    pub kind: AuditKind,
    /// Tool name, operator command or transition event.
    pub action: AuditAction,
    /// The process concerned, if any.
    pub pid: Option<Pid>,
    /// Arguments; stored canonical and bounded.
    pub args: serde_json::Value,
    /// The capability decision where one was made.
    pub decision: Option<AuditDecision>,
    /// The grant that decided, when a grant did.
    pub grant: Option<GrantId>,
    /// How it came out.
    pub outcome: Outcome,
    /// The result text, stored as its sha256 digest only.
    pub result: Option<String>,
    /// A short human-readable line (`runnable -> running`, an error message).
    pub detail: Option<String>,
}

/// A committed audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: AuditSeq,
    /// Commit time.
    pub at: Timestamp,
    /// Who acted (stored as `pid:N`, `human:NAME` or `kernel`).
    pub actor: Actor,
    /// Record kind.
    pub kind: AuditKind,
    /// Tool, command or event.
    pub action: AuditAction,
    /// Process concerned.
    pub pid: Option<Pid>,
    /// Canonical JSON arguments, bounded to [`ARGS_LIMIT`] bytes.
    pub args: String,
    /// sha256 of the full canonical arguments.
    pub args_sha256: String,
    /// Capability decision.
    pub decision: Option<AuditDecision>,
    /// The grant that decided, when a grant did.
    pub grant: Option<i64>,
    /// How it came out.
    pub outcome: Outcome,
    /// sha256 of the result text.
    pub result_digest: Option<String>,
    /// Human-readable line.
    pub detail: Option<String>,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// `sha256(prev_hash || canonical(record))`.
    pub hash: String,
}

/// A record's fields borrowed from wherever they are (a row being read, an
/// [`AuditRecord`]): what hashing and verification need, without copying.
#[derive(Debug, Clone, Copy)]
pub struct AuditRow<'a> {
    /// Position in the chain.
    pub seq: i64,
    /// Commit time, micros.
    pub at: i64,
    /// Actor.
    pub actor: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Action.
    pub action: &'a str,
    /// Process.
    pub pid: Option<i64>,
    /// Canonical arguments.
    pub args: &'a str,
    /// Their sha256.
    pub args_sha256: &'a str,
    /// AuditDecision.
    pub decision: Option<&'a str>,
    /// Deciding grant.
    pub grant: Option<i64>,
    /// Outcome.
    pub outcome: &'a str,
    /// Result digest.
    pub result_digest: Option<&'a str>,
    /// Detail.
    pub detail: Option<&'a str>,
    /// Previous hash.
    pub prev_hash: &'a str,
    /// This record's hash.
    pub hash: &'a str,
}

impl AuditRecord {
    /// The record's canonical bytes (what its hash covers), into `out`.
    pub fn canonical_bytes(&self, out: &mut Vec<u8>) {
        let actor = self.actor.to_string();
        canonical_bytes(
            &AuditRow {
                seq: self.seq.get(),
                at: self.at.micros(),
                actor: &actor,
                kind: self.kind.as_str(),
                action: self.action.as_str(),
                pid: self.pid.map(Pid::get),
                args: &self.args,
                args_sha256: &self.args_sha256,
                decision: self.decision.map(AuditDecision::as_str),
                grant: self.grant,
                outcome: self.outcome.as_str(),
                result_digest: self.result_digest.as_deref(),
                detail: self.detail.as_deref(),
                prev_hash: &self.prev_hash,
                hash: &self.hash,
            },
            out,
        );
    }

    /// A stored row read back into a record: the one place the audit
    /// table's text becomes types. A field holding text no record can have
    /// (an unknown outcome, a malformed actor) is an error naming the record
    /// and the field, never a default.
    pub fn from_row(r: &AuditRow<'_>) -> Result<AuditRecord, BadField> {
        let bad = |field: &'static str, value: &str| BadField {
            seq: r.seq,
            field,
            value: crate::text::escape_line(&value.chars().take(80).collect::<String>()).into_owned(),
        };
        let actor: Actor = r.actor.parse().map_err(|_| bad("actor", r.actor))?;
        let kind = AuditKind::parse(r.kind).ok_or_else(|| bad("kind", r.kind))?;
        let outcome = Outcome::parse(r.outcome).ok_or_else(|| bad("outcome", r.outcome))?;
        let action = AuditAction::parse(kind, outcome, r.action).ok_or_else(|| bad("action", r.action))?;
        let decision = match r.decision {
            None => None,
            Some(d) => Some(AuditDecision::parse(d).ok_or_else(|| bad("decision", d))?),
        };
        let pid = match r.pid {
            None => None,
            Some(n) if n > 0 => Some(Pid(n)),
            Some(n) => return Err(bad("pid", &n.to_string())),
        };
        Ok(AuditRecord {
            seq: AuditSeq(r.seq),
            at: Timestamp(r.at),
            actor,
            kind,
            action,
            pid,
            args: r.args.to_string(),
            args_sha256: r.args_sha256.to_string(),
            decision,
            grant: r.grant,
            outcome,
            result_digest: r.result_digest.map(str::to_string),
            detail: r.detail.map(str::to_string),
            prev_hash: r.prev_hash.to_string(),
            hash: r.hash.to_string(),
        })
    }
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this process.
    pub pid: Option<Pid>,
    /// Only records whose action has this text (a tool's name, a command or an event).
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Only records at or after this time.
    pub since: Option<Timestamp>,
    /// Only records after this sequence number (for following).
    pub after: Option<AuditSeq>,
    /// Only records before this sequence number (for paging back).
    pub before: Option<AuditSeq>,
    /// At most this many, the most recent ones.
    pub limit: Option<usize>,
    /// At most this many, the oldest ones (for following a growing log in
    /// batches; takes precedence over `limit`).
    pub first: Option<usize>,
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Canonical JSON of `args` and its sha256, bounded: text over [`ARGS_LIMIT`]
/// bytes is replaced by a summary naming its size and keeping a prefix.
pub fn bound_args(args: &serde_json::Value) -> (String, String) {
    // serde_json's map is ordered by key (no `preserve_order`), so this is canonical.
    let full = args.to_string();
    let digest = sha256_hex(full.as_bytes());
    if full.len() <= ARGS_LIMIT {
        return (full, digest);
    }
    let mut cut = 1024;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    let summary = serde_json::json!({
        "truncated": true,
        "bytes": full.len(),
        "prefix": &full[..cut],
    });
    (summary.to_string(), digest)
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Most fields need no escaping; copying them directly is the same bytes
    // serde_json would write, and verification does this for every field.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_opt_int(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// The canonical bytes of a record: compact JSON, keys sorted, every field but
/// `prev_hash` and `hash`. `args` is embedded as the stored JSON text.
pub fn canonical_bytes(r: &AuditRow<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"{\"action\":");
    write_str(out, r.action);
    out.extend_from_slice(b",\"actor\":");
    write_str(out, r.actor);
    out.extend_from_slice(b",\"args\":");
    // Stored text; a tampered, non-JSON value still hashes differently.
    write_str(out, r.args);
    out.extend_from_slice(b",\"args_sha256\":");
    write_str(out, r.args_sha256);
    let _ = write!(out, ",\"at\":{}", r.at);
    out.extend_from_slice(b",\"decision\":");
    write_opt_str(out, r.decision);
    out.extend_from_slice(b",\"detail\":");
    write_opt_str(out, r.detail);
    out.extend_from_slice(b",\"grant\":");
    write_opt_int(out, r.grant);
    out.extend_from_slice(b",\"kind\":");
    write_str(out, r.kind);
    out.extend_from_slice(b",\"outcome\":");
    write_str(out, r.outcome);
    out.extend_from_slice(b",\"pid\":");
    write_opt_int(out, r.pid);
    out.extend_from_slice(b",\"result_digest\":");
    write_opt_str(out, r.result_digest);
    let _ = write!(out, ",\"seq\":{}}}", r.seq);
}

/// `sha256(prev_hash || canonical)`, hex.
pub fn chain_hash(prev_hash: &str, canonical: &[u8]) -> String {
    hex::encode(chain_digest(prev_hash, canonical))
}

fn chain_digest(prev_hash: &str, canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical);
    h.finalize().into()
}

/// Whether `hash` (lowercase hex, as stored) is the chain hash of `canonical`
/// after `prev_hash`. Verification calls this once per record, so it encodes
/// into a stack buffer instead of allocating a string.
pub fn chain_hash_matches(prev_hash: &str, canonical: &[u8], hash: &str) -> bool {
    let mut hex_buf = [0u8; 64];
    // The buffer is exactly twice the digest's length, so encoding cannot fail.
    hex::encode_to_slice(chain_digest(prev_hash, canonical), &mut hex_buf).is_ok() && hex_buf == hash.as_bytes()
}
