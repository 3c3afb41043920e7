//! What an approval binds: the stored call, checked against the audit chain.
//!
//! A call parks on an approval with two records, appended one after the
//! other in the park's transaction: the call's own (`outcome = parked`:
//! tool, pid, canonical arguments and their sha256) and the request's
//! (`action = request`: the request id, the tool, that sha256, and the
//! resource and right that asked). The request row, the parked row and the
//! grant `--always` installs are all read back from the store, which
//! anyone with the file can edit; the chain is what an edit cannot change
//! unnoticed. So [`check`] compares every stored part that decides what
//! runs (request: tool, arguments, resource, right; parked call: tool,
//! arguments) with those two records, both when a human decides and when
//! the lease that resumes an approved call reads it.

use std::fmt;

use serde_json::json;

use crate::actor::Actor;
use crate::audit::{AuditDraft, AuditKind, KernelAction, Outcome, bound_args, sha256_hex};
use crate::caps::{Resource, ResourcePattern, Right};
use crate::error::KernelError;
use crate::ids::{Pid, RequestId};
use crate::ipc::{Request, RequestKind, RequestStatus};
use crate::quantum::{ApprovedCall, Binding};
use crate::store::{AuditRef, ParkedCall, Tx};

/// How a stored call differs from what the chain recorded when it parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mismatch {
    /// The record the request points at is not the park of this process's call.
    NoPark(AuditRef),
    /// A stored part differs from the record of the park (at this seq, or
    /// where the request points while it waits for sealing).
    Differs(AuditRef, Part),
}

/// A stored part of a parked call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    RequestTool,
    RequestArgs,
    ParkedCall,
    ParkedTool,
    ParkedArgs,
    /// The resource and right the approval is for (and `--always` grants).
    Need,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::RequestTool => "the request's tool",
            Part::RequestArgs => "the request's arguments",
            Part::ParkedCall => "the parked call",
            Part::ParkedTool => "the parked call's tool",
            Part::ParkedArgs => "the parked call's arguments",
            Part::Need => "the resource and right asked for",
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::NoPark(seq) => write!(f, "the audit log holds no park of this call at record {seq}"),
            Mismatch::Differs(seq, part) => write!(
                f,
                "the stored call differs from the call recorded in the audit log (record {seq}) in {}",
                part.as_str()
            ),
        }
    }
}

fn request_args(id: RequestId, tool: &str, args_sha256: &str, resource: &Resource, right: Right) -> serde_json::Value {
    json!({
        "request": id.get(),
        "tool": tool,
        "args_sha256": args_sha256,
        "resource": ResourcePattern::exact(resource).to_string(),
        "right": right.as_str(),
    })
}

/// The record binding approval request `id` to the resource and right that
/// asked; appended right after the record of the call that parked.
pub(super) fn request_record(
    pid: Pid,
    id: RequestId,
    tool: &str,
    args_sha256: &str,
    resource: &Resource,
    right: Right,
) -> AuditDraft {
    AuditDraft {
        actor: Actor::Kernel,
        kind: AuditKind::Kernel,
        action: KernelAction::Request.into(),
        pid: Some(pid),
        args: request_args(id, tool, args_sha256, resource, right),
        decision: None,
        grant: None,
        outcome: Outcome::Ok,
        result: None,
        detail: Some(format!("approval request {id}: {right} {resource} for {tool}")),
    }
}

/// Whether `req` (whose park is recorded at `at`) and `parked`, the call
/// its process is parked on, are what the chain recorded. Reads only.
///
/// On PostgreSQL the two records may still wait for sealing (see
/// `store::seal`): they are read where they are, and what protects them
/// until they are chained is their digest, checked by the sealer.
pub(super) fn check(
    tx: &Tx<'_>,
    req: &Request,
    at: AuditRef,
    parked: Option<&ParkedCall>,
) -> Result<Result<(), Mismatch>, KernelError> {
    let (call, next) = match tx.audit_referred(at)? {
        Some((r, next)) if r.kind == AuditKind::Tool && r.outcome == Outcome::Parked && r.pid == Some(req.pid) => {
            (r, next)
        }
        _ => return Ok(Err(Mismatch::NoPark(at))),
    };
    // Named by its seq once sealed.
    let shown = if call.seq.get() > 0 { AuditRef(call.seq.get()) } else { at };
    let differs = |part| Ok(Err(Mismatch::Differs(shown, part)));
    if req.tool != call.action.as_str() {
        return differs(Part::RequestTool);
    }
    if req.args_sha256 != call.args_sha256 || sha256_hex(req.args.as_bytes()) != call.args_sha256 {
        return differs(Part::RequestArgs);
    }
    let Some(parked) = parked.filter(|p| p.request == Some(req.id)) else {
        return differs(Part::ParkedCall);
    };
    if parked.call.tool != call.action.as_str() {
        return differs(Part::ParkedTool);
    }
    if sha256_hex(parked.call.args.as_bytes()) != call.args_sha256 {
        return differs(Part::ParkedArgs);
    }
    if let RequestKind::Approval { resource, right } = &req.kind {
        let (_, expected) =
            bound_args(&request_args(req.id, call.action.as_str(), &call.args_sha256, resource, *right));
        let bound = next.is_some_and(|r| {
            r.kind == AuditKind::Kernel
                && r.action.is(KernelAction::Request)
                && r.pid == Some(req.pid)
                && r.args_sha256 == expected
        });
        if !bound {
            return differs(Part::Need);
        }
    }
    Ok(Ok(()))
}

/// The approved call `parked` as a lease resumes it: intact, with the need
/// its approval lifts, or broken, saying why (then it must never run).
pub(super) fn approved_call(
    tx: &Tx<'_>,
    pid: Pid,
    parked: ParkedCall,
    id: RequestId,
) -> Result<ApprovedCall, KernelError> {
    let Some((req, at)) = tx.request(id)? else {
        let binding = Binding::Broken { why: format!("request {id} is gone"), need: None };
        return Ok(ApprovedCall { request: id, quantum: parked.quantum, call: parked.call, binding });
    };
    let need = match &req.kind {
        RequestKind::Approval { resource, right } => Some((resource.clone(), *right)),
        RequestKind::Question { .. } => None,
    };
    let broken = |why: String| Binding::Broken { why, need: need.clone() };
    let binding = if req.pid != pid {
        broken(format!("request {id} belongs to process {}", req.pid))
    } else if req.status != RequestStatus::Approved {
        broken(format!("request {id} is {}, not approved", req.status.name()))
    } else {
        match (check(tx, &req, at, Some(&parked))?, &need) {
            (Err(m), _) => broken(m.to_string()),
            (Ok(()), Some((resource, right))) => Binding::Intact { resource: resource.clone(), right: *right },
            (Ok(()), None) => broken(format!("request {id} is a question")),
        }
    };
    Ok(ApprovedCall { request: id, quantum: parked.quantum, call: parked.call, binding })
}
