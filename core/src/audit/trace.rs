//! What the audit log says of a process's quanta, lease by lease: when each
//! was leased and how the lease ended, the decisions humans made on the
//! requests it parked on, how its wait ended, and which lease re-ran an
//! approved call (with no model call, so nothing else records it).
//!
//! Model calls and transcript entries say what a quantum did; this says
//! what happened to it, so a reader of `libos logs` sees every quantum
//! number: one given back and leased again, one cut off by a kill or a
//! pause, one that ran the approved call of an earlier one.

use std::collections::HashMap;

use crate::actor::Actor;
use crate::audit::{AuditAction, AuditRecord, KernelAction, Outcome};
use crate::ids::RequestId;
use crate::time::Timestamp;

/// How a lease ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEnd {
    /// The quantum committed and the process went on.
    Committed,
    /// A model call failed after its retries; the process waits out a backoff.
    BackedOff,
    /// The process parked on this (`human: request 3`, `timer: ...`).
    Parked(String),
    /// The process exited.
    Exited,
    /// The process failed (its reason).
    Failed(String),
    /// The process was killed during the quantum (by whom).
    Killed(Actor),
    /// The process was paused during the quantum (by whom): nothing committed.
    Paused(Actor),
    /// The scheduler gave the lease back (it stopped): nothing committed.
    Released,
    /// The lease lapsed (its scheduler died) and was recovered: nothing committed.
    Expired,
}

impl LeaseEnd {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            LeaseEnd::Committed => "committed",
            LeaseEnd::BackedOff => "backed_off",
            LeaseEnd::Parked(_) => "parked",
            LeaseEnd::Exited => "exited",
            LeaseEnd::Failed(_) => "failed",
            LeaseEnd::Killed(_) => "killed",
            LeaseEnd::Paused(_) => "paused",
            LeaseEnd::Released => "released",
            LeaseEnd::Expired => "lease_expired",
        }
    }

    /// What it carries: the wait, the reason, who.
    pub fn detail(&self) -> Option<String> {
        match self {
            LeaseEnd::Parked(s) | LeaseEnd::Failed(s) => Some(s.clone()),
            LeaseEnd::Killed(a) | LeaseEnd::Paused(a) => Some(a.to_string()),
            LeaseEnd::Committed | LeaseEnd::BackedOff | LeaseEnd::Exited | LeaseEnd::Released | LeaseEnd::Expired => {
                None
            }
        }
    }
}

/// What was decided of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A human approved it.
    Approve,
    /// A human denied it.
    Deny,
    /// A human answered the question.
    Answer,
    /// The kernel cancelled it when the process ended.
    Cancel,
}

impl Verdict {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
            Verdict::Answer => "answer",
            Verdict::Cancel => "cancel",
        }
    }
}

/// A human's decision (or the kernel's cancellation) of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionTrace {
    /// The request.
    pub request: RequestId,
    /// What was decided.
    pub verdict: Verdict,
    /// Who (a human, or the kernel).
    pub by: Actor,
    /// When.
    pub at: Timestamp,
    /// `ok`, or how a refused decision came out (`error`, `denied`).
    pub outcome: Outcome,
    /// The record's line.
    pub detail: Option<String>,
}

/// How a wait ended (the parked call completed without a new quantum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeTrace {
    /// Why (`a message arrived`, `timer`, `denied`, ...).
    pub why: String,
    /// When.
    pub at: Timestamp,
}

/// One lease of a process, as the audit log tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTrace {
    /// The quantum number it was leased for (a lease given back before a
    /// model call leaves its number to the next one).
    pub quantum: u64,
    /// When it was leased.
    pub at: Timestamp,
    /// How it ended; `None` while it runs.
    pub ended: Option<LeaseEnd>,
    /// The quantum whose approved call this lease re-ran (no model call).
    pub resumed: Option<u64>,
    /// Decisions on the requests this lease parked on.
    pub decisions: Vec<DecisionTrace>,
    /// How the wait it parked on ended.
    pub woke: Option<WakeTrace>,
}

fn args(r: &AuditRecord) -> serde_json::Value {
    serde_json::from_str(&r.args).unwrap_or_default()
}

fn request_of(r: &AuditRecord) -> Option<RequestId> {
    args(r).get("request").and_then(serde_json::Value::as_i64).map(RequestId)
}

/// The leases in `records` (one process's, oldest first).
pub fn leases(records: &[AuditRecord]) -> Vec<LeaseTrace> {
    let mut out: Vec<LeaseTrace> = Vec::new();
    // Index in `out` of the lease running now, of the one whose wait is
    // open, and of the lease each request was opened by.
    let mut running: Option<usize> = None;
    let mut parked: Option<usize> = None;
    let mut by_request: HashMap<RequestId, usize> = HashMap::new();
    // An approval makes the next lease re-run the call of this one.
    let mut approved: Option<usize> = None;
    for r in records {
        let Some(action) = (match &r.action {
            AuditAction::Kernel(a) => Some(*a),
            AuditAction::Tool(_) | AuditAction::NoTool | AuditAction::BadName(_) => None,
        }) else {
            // A parked call completed where its wait ended.
            if r.kind == crate::audit::AuditKind::Kernel
                && args(r).get("completed").is_some()
                && let Some(i) = parked.take()
            {
                out[i].woke = Some(WakeTrace { why: r.detail.clone().unwrap_or_default(), at: r.at });
            }
            continue;
        };
        use KernelAction as K;
        match action {
            K::Lease => {
                let quantum = args(r).get("quantum").and_then(serde_json::Value::as_u64).unwrap_or_default();
                let resumed = approved.take().map(|i| out[i].quantum);
                out.push(LeaseTrace { quantum, at: r.at, ended: None, resumed, decisions: Vec::new(), woke: None });
                running = Some(out.len() - 1);
            }
            K::Yield | K::Park | K::Exit | K::Fail | K::Kill | K::Pause | K::Release | K::LeaseExpired => {
                let Some(i) = running else { continue };
                let a = args(r);
                let field = |k: &str| a.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
                let end = match action {
                    K::Yield if a.get("not_before").is_some_and(|v| !v.is_null()) => LeaseEnd::BackedOff,
                    K::Yield => LeaseEnd::Committed,
                    K::Park => {
                        parked = Some(i);
                        let on = field("on");
                        // A question opens a request with no record of its
                        // own: its wait names it (`WaitOn`'s form).
                        if let Some(id) = on.strip_prefix("human: request ").and_then(|n| n.parse().ok()) {
                            by_request.entry(RequestId(id)).or_insert(i);
                        }
                        LeaseEnd::Parked(on)
                    }
                    K::Exit => LeaseEnd::Exited,
                    K::Fail => LeaseEnd::Failed(field("error")),
                    K::Kill => LeaseEnd::Killed(r.actor.clone()),
                    K::Pause => LeaseEnd::Paused(r.actor.clone()),
                    K::Release => LeaseEnd::Released,
                    _ => LeaseEnd::Expired,
                };
                out[i].ended = Some(end);
                running = None;
            }
            K::Request => {
                if let (Some(id), Some(i)) = (request_of(r), running.or(parked)) {
                    by_request.insert(id, i);
                }
            }
            K::Approve | K::Deny | K::Answer | K::CancelRequest => {
                let Some(id) = request_of(r) else { continue };
                let Some(&i) = by_request.get(&id) else { continue };
                let verdict = match action {
                    K::Approve => Verdict::Approve,
                    K::Deny => Verdict::Deny,
                    K::Answer => Verdict::Answer,
                    _ => Verdict::Cancel,
                };
                if verdict == Verdict::Approve && r.outcome == Outcome::Ok {
                    approved = Some(i);
                }
                out[i].decisions.push(DecisionTrace {
                    request: id,
                    verdict,
                    by: r.actor.clone(),
                    at: r.at,
                    outcome: r.outcome,
                    detail: r.detail.clone(),
                });
            }
            K::Wake
            | K::Resume
            | K::Spawn
            | K::Send
            | K::Renice
            | K::Grant
            | K::Revoke
            | K::UnconfinedShell
            | K::Delegate
            | K::Connect => {}
        }
    }
    out
}
