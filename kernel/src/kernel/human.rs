//! Requests to humans: approvals of parked calls, and questions.
//!
//! A request is decided exactly once (the update only matches an open
//! request). Approving checks that the stored call is still the one the
//! audit chain recorded when it parked (tool, pid and the sha256 of its
//! canonical arguments), then marks it for re-dispatch: the next quantum
//! runs exactly that call with no model call, after the capability check
//! runs again. Denying and answering complete the parked call at once.

use serde_json::json;

use super::Kernel;
use super::park::{complete_parked, waiting_on};
use crate::actor::Actor;
use crate::audit::{AuditDraft, AuditKind, Outcome, sha256_hex};
use crate::caps::{Effect, GrantSpec, ResourcePattern, Rights};
use crate::error::KernelError;
use crate::ids::{GrantId, RequestId};
use crate::ipc::{Request, RequestKind, RequestStatus};
use crate::quantum::ToolResultRecord;
use crate::state::{Event, WaitOn};
use crate::store::Tx;
use crate::time::Timestamp;

/// How a human decides a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run the parked call (approvals).
    Approve {
        /// Also install an exact allow grant, so the same call never asks again.
        always: bool,
    },
    /// Refuse it; the reason becomes the tool result.
    Deny {
        /// Also install an exact deny grant.
        always: bool,
        /// Why, for the model.
        reason: String,
    },
    /// Answer a question.
    Answer {
        /// The answer, for the model.
        text: String,
    },
}

/// What deciding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The request, as decided.
    pub request: Request,
    /// The grant `--always` installed.
    pub grant: Option<GrantId>,
}

/// Loads an open request that `pid` is still parked on, or says why not.
fn open_request(tx: &Tx<'_>, id: RequestId) -> Result<Request, KernelError> {
    let (req, seq) = tx.request(id)?.ok_or(KernelError::NoSuchRequest(id))?;
    if req.status != RequestStatus::Open {
        return Err(KernelError::Refused(format!("request {id} was already {}", req.status.name())));
    }
    let p = tx.process(req.pid)?;
    if waiting_on(&p.state) != Some(&WaitOn::Human(id)) {
        return Err(KernelError::Refused(format!(
            "request {id} does not belong to what process {} is waiting on (it is {})",
            req.pid, p.state
        )));
    }
    // The stored call must be the one the chain recorded when it parked.
    let recorded = tx.audit_record(seq)?;
    let intact = sha256_hex(req.args.as_bytes()) == req.args_sha256
        && recorded.as_ref().is_some_and(|r| {
            r.args_sha256 == req.args_sha256 && r.action == req.tool && r.pid == Some(req.pid) && r.outcome == "parked"
        });
    if !intact {
        return Err(KernelError::Refused(format!(
            "request {id}: the stored call does not match the call recorded in the audit log (record {seq}); refusing to decide it"
        )));
    }
    Ok(req)
}

impl Kernel {
    /// Open requests, oldest first.
    pub fn pending(&self) -> Result<Vec<Request>, KernelError> {
        self.read(|tx| tx.open_requests())
    }

    /// One request, in any status.
    pub fn request(&self, id: RequestId) -> Result<Request, KernelError> {
        self.read(|tx| tx.request(id)?.map(|(r, _)| r).ok_or(KernelError::NoSuchRequest(id)))
    }

    /// Decides a request, once. Approvals take approve or deny; questions take an answer.
    pub fn decide(&self, id: RequestId, verdict: &Verdict, by: &Actor) -> Result<Decided, KernelError> {
        self.write(|tx| {
            let now = Timestamp::now();
            let req = open_request(tx, id)?;
            let (status, action) = match (&req.kind, verdict) {
                (RequestKind::Approval { .. }, Verdict::Approve { .. }) => (RequestStatus::Approved, "approve"),
                (RequestKind::Approval { .. }, Verdict::Deny { reason, .. }) => {
                    (RequestStatus::Denied { reason: reason.clone() }, "deny")
                }
                (RequestKind::Question { .. }, Verdict::Answer { text }) => {
                    (RequestStatus::Answered { text: text.clone() }, "answer")
                }
                (RequestKind::Question { .. }, Verdict::Deny { reason, .. }) => {
                    (RequestStatus::Denied { reason: reason.clone() }, "deny")
                }
                (RequestKind::Approval { .. }, Verdict::Answer { .. }) => {
                    return Err(KernelError::Refused(format!(
                        "request {id} is an approval: approve or deny it, there is no question to answer"
                    )));
                }
                (RequestKind::Question { .. }, Verdict::Approve { .. }) => {
                    return Err(KernelError::Refused(format!("request {id} is a question: answer it")));
                }
            };
            if !tx.decide_request(id, &status, by, now)? {
                return Err(KernelError::Refused(format!("request {id} was already decided")));
            }
            let always = match verdict {
                Verdict::Approve { always } | Verdict::Deny { always, .. } => *always,
                Verdict::Answer { .. } => false,
            };
            let grant = match (&req.kind, always) {
                (RequestKind::Approval { resource, right }, true) => {
                    let effect = if matches!(verdict, Verdict::Approve { .. }) { Effect::Allow } else { Effect::Deny };
                    let mut spec = GrantSpec::allow(Rights::one(*right), ResourcePattern::exact(resource));
                    spec.effect = effect;
                    Some(tx.insert_grant(req.pid, &spec, None, by, now)?)
                }
                _ => None,
            };
            tx.append_audit(
                &AuditDraft {
                    actor: by.clone(),
                    kind: AuditKind::Operator,
                    action: action.to_string(),
                    pid: Some(req.pid),
                    args: json!({
                        "request": id.get(),
                        "tool": req.tool,
                        "args_sha256": req.args_sha256,
                        "always": always,
                    }),
                    decision: None,
                    grant,
                    outcome: Outcome::Ok,
                    result: match &status {
                        RequestStatus::Denied { reason } => Some(reason.clone()),
                        RequestStatus::Answered { text } => Some(text.clone()),
                        _ => None,
                    },
                    detail: Some(format!("{action} request {id} of process {} ({})", req.pid, req.tool)),
                },
                now,
            )?;
            match &status {
                RequestStatus::Approved => {
                    tx.approve_parked(req.pid)?;
                    super::apply(tx, req.pid, None, Event::Wake, now)?;
                }
                RequestStatus::Denied { reason } => {
                    let content =
                        if reason.is_empty() { format!("denied by {by}") } else { format!("denied by {by}: {reason}") };
                    complete_parked(
                        tx,
                        req.pid,
                        ToolResultRecord { outcome: Outcome::Denied, content },
                        "denied",
                        now,
                    )?;
                }
                RequestStatus::Answered { text } => {
                    let content = format!("{by} answered: {text}");
                    complete_parked(tx, req.pid, ToolResultRecord { outcome: Outcome::Ok, content }, "answered", now)?;
                }
                RequestStatus::Open | RequestStatus::Cancelled => {}
            }
            let request = tx.request(id)?.map(|(r, _)| r).ok_or(KernelError::NoSuchRequest(id))?;
            Ok(Decided { request, grant })
        })
    }
}
