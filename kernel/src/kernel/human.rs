//! Requests to humans: approvals of parked calls, and questions.
//!
//! A request is decided exactly once (the update only matches an open
//! request). Any decision first checks that the stored call (the request
//! row and the parked row) is still the one the audit chain recorded when
//! it parked (`binding::check`: tool, pid, the sha256 of its canonical
//! arguments, the resource and right that asked). Approving then marks it
//! for re-dispatch: the next lease checks it against the chain again, and
//! the quantum runs exactly that call with no model call, after the
//! capability check runs again. Denying and answering complete the parked
//! call at once. A refused decision leaves an audit record of its own; one
//! refused because the stored call was edited also cancels the request and
//! tells the process its call will not run.

use serde_json::json;

use super::Kernel;
use super::binding::{self, Mismatch};
use super::park::{complete_parked, waiting_on};
use crate::actor::Actor;
use crate::audit::{AuditDecision, AuditDraft, AuditKind, KernelAction, Outcome};
use crate::caps::{Effect, GrantSpec, Resource, ResourcePattern, Right, Rights};
use crate::error::KernelError;
use crate::ids::{GrantId, Pid, RequestId};
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

impl Verdict {
    /// The operator command it is: `approve`, `deny` or `answer`.
    pub fn action(&self) -> KernelAction {
        match self {
            Verdict::Approve { .. } => KernelAction::Approve,
            Verdict::Deny { .. } => KernelAction::Deny,
            Verdict::Answer { .. } => KernelAction::Answer,
        }
    }
}

/// What deciding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The request, as decided.
    pub request: Request,
    /// The grant `--always` installed.
    pub grant: Option<GrantId>,
}

/// Why a decision is refused. Every refusal is audited; one of a stored
/// call that is not what the chain recorded also cancels the request.
enum Refusal {
    /// No request with this id.
    Missing,
    /// Not decidable, or not this way (decided already, not waited on, the
    /// wrong verb): the operator hears why and nothing changes.
    Invalid { pid: Pid, message: String },
    /// The stored call differs from its record: nobody may decide it.
    /// `need` is what the request says it asked for, for the check.
    Tampered { pid: Pid, mismatch: Mismatch, need: Option<(Resource, Right)> },
}

/// Loads an open request that its process is still parked on, whose stored
/// call is the one the chain recorded. Reads only.
fn open_request(tx: &Tx<'_>, id: RequestId) -> Result<Result<Request, Refusal>, KernelError> {
    let Some((req, at)) = tx.request(id)? else {
        return Ok(Err(Refusal::Missing));
    };
    let invalid = |message| Ok(Err(Refusal::Invalid { pid: req.pid, message }));
    if req.status != RequestStatus::Open {
        return invalid(format!("request {id} was already {}", req.status.name()));
    }
    let p = tx.process(req.pid)?;
    if waiting_on(&p.state) != Some(&WaitOn::Human(id)) {
        return invalid(format!(
            "request {id} does not belong to what process {} is waiting on (it is {})",
            req.pid, p.state
        ));
    }
    let parked = tx.parked(req.pid)?;
    Ok(match binding::check(tx, &req, at, parked.as_ref())? {
        Ok(()) => Ok(req),
        Err(mismatch) => {
            let need = match &req.kind {
                RequestKind::Approval { resource, right } => Some((resource.clone(), *right)),
                RequestKind::Question { .. } => None,
            };
            Err(Refusal::Tampered { pid: req.pid, mismatch, need })
        }
    })
}

/// Records a refused decision and returns the error the caller gets. A
/// tampered request is then cancelled and its call completed with an error,
/// so the process hears why and is not left waiting on what nobody may decide.
fn refuse(
    tx: &Tx<'_>,
    id: RequestId,
    verdict: &Verdict,
    by: &Actor,
    refusal: Refusal,
    now: Timestamp,
) -> Result<KernelError, KernelError> {
    let (pid, outcome, error, check) = match &refusal {
        Refusal::Missing => (None, Outcome::Error, KernelError::NoSuchRequest(id), None),
        Refusal::Invalid { pid, message } => (Some(*pid), Outcome::Error, KernelError::Refused(message.clone()), None),
        Refusal::Tampered { pid, mismatch, need } => {
            let message =
                format!("request {id} refused: {mismatch}; the request is cancelled and the call will not run");
            // A refusal of authority, like any other: a denial with its check.
            let check = match need {
                Some((resource, right)) => format!("{right} {resource}: deny (not what the audit log recorded)"),
                None => "deny (not what the audit log recorded)".to_string(),
            };
            (Some(*pid), Outcome::Denied, KernelError::Refused(message), Some(check))
        }
    };
    tx.append_audit(
        &AuditDraft {
            actor: by.clone(),
            kind: AuditKind::Operator,
            action: verdict.action().into(),
            pid,
            args: json!({ "request": id.get() }),
            decision: check.as_ref().map(|_| AuditDecision::Deny),
            grant: None,
            outcome,
            result: None,
            detail: Some(match &check {
                Some(c) => format!("{error} [{c}]"),
                None => error.to_string(),
            }),
        },
        now,
    )?;
    if let Refusal::Tampered { pid, mismatch, .. } = refusal {
        tx.decide_request(id, &RequestStatus::Cancelled, &Actor::Kernel, now)?;
        let content = format!("not run: request {id} was cancelled: {mismatch}");
        complete_parked(tx, pid, ToolResultRecord { outcome: Outcome::Denied, content }, "cancelled", now)?;
    }
    Ok(error)
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

    /// Decides a request, once. Approvals take approve or deny; questions
    /// take an answer. A refused decision is audited too (its record
    /// commits, the error is returned); one on a stored call that is not
    /// what the audit chain recorded cancels the request, and the process
    /// is told its call will not run.
    pub fn decide(&self, id: RequestId, verdict: &Verdict, by: &Actor) -> Result<Decided, KernelError> {
        // Every refusal is found before anything is written, so its record
        // commits alone (with the cancellation, for a tampered request).
        self.write(|tx| match decide_in(tx, id, verdict, by, self.now())? {
            Ok(decided) => Ok(Ok(decided)),
            Err(refusal) => refuse(tx, id, verdict, by, refusal, self.now()).map(Err),
        })?
    }
}

/// [`Kernel::decide`] in its transaction; a refusal is returned before any write.
fn decide_in(
    tx: &Tx<'_>,
    id: RequestId,
    verdict: &Verdict,
    by: &Actor,
    now: Timestamp,
) -> Result<Result<Decided, Refusal>, KernelError> {
    let req = match open_request(tx, id)? {
        Ok(req) => req,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let invalid = |message| Ok(Err(Refusal::Invalid { pid: req.pid, message }));
    let status = match (&req.kind, verdict) {
        (RequestKind::Approval { .. }, Verdict::Approve { .. }) => RequestStatus::Approved,
        (RequestKind::Approval { .. } | RequestKind::Question { .. }, Verdict::Deny { reason, .. }) => {
            RequestStatus::Denied { reason: reason.clone() }
        }
        (RequestKind::Question { .. }, Verdict::Answer { text }) => RequestStatus::Answered { text: text.clone() },
        (RequestKind::Approval { .. }, Verdict::Answer { .. }) => {
            return invalid(format!("request {id} is an approval: approve or deny it, there is no question to answer"));
        }
        (RequestKind::Question { .. }, Verdict::Approve { .. }) => {
            return invalid(format!("request {id} is a question: answer it"));
        }
    };
    let action = verdict.action();
    if !tx.decide_request(id, &status, by, now)? {
        return invalid(format!("request {id} was already decided"));
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
            action: action.into(),
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
            complete_parked(tx, req.pid, ToolResultRecord { outcome: Outcome::Denied, content }, "denied", now)?;
        }
        RequestStatus::Answered { text } => {
            let content = format!("{by} answered: {text}");
            complete_parked(tx, req.pid, ToolResultRecord { outcome: Outcome::Ok, content }, "answered", now)?;
        }
        RequestStatus::Open | RequestStatus::Cancelled => {}
    }
    let request = tx.request(id)?.map(|(r, _)| r).ok_or(KernelError::NoSuchRequest(id))?;
    Ok(Ok(Decided { request, grant }))
}
