//! Parking and waking, inside the caller's transaction.
//!
//! A process parks on a [`WaitOn`] with the call it was making stored
//! beside it (`parked`). Whatever can end a wait calls in here in the same
//! transaction as the change that ends it: a message delivered, a child
//! ended, a request decided, a timer due. Parking itself first asks
//! [`satisfied`] in the same transaction, so a condition that became true
//! between the model's choice and the commit is seen: no wake-up is lost.

use serde_json::json;

use super::apply;
use crate::actor::Actor;
use crate::audit::{AuditAction, AuditDecision, AuditDraft, AuditKind, KernelAction, Outcome};
use crate::error::KernelError;
use crate::ids::{MsgId, Pid};
use crate::ipc::{Message, MessageKind, NewMessage};
use crate::quantum::ToolResultRecord;
use crate::state::{Event, ProcState, WaitOn};
use crate::store::Tx;
use crate::time::Timestamp;
use crate::tool_name::ToolName;

/// What a process is waiting on, directly or under a pause.
pub(super) fn waiting_on(state: &ProcState) -> Option<&WaitOn> {
    match state {
        ProcState::Waiting { on } => Some(on),
        ProcState::Paused { was } => match &**was {
            ProcState::Waiting { on } => Some(on),
            _ => None,
        },
        _ => None,
    }
}

/// The end of a child, as its waiting parent reads it.
pub(super) fn child_status(pid: Pid, image: &str, state: &ProcState) -> String {
    match state {
        ProcState::Exited { code, result } => format!("child {pid} ({image}) exited({code}): {result}"),
        ProcState::Failed { kind, error } => format!("child {pid} ({image}) failed({}): {error}", kind.as_str()),
        ProcState::Killed { by, reason } => format!("child {pid} ({image}) was killed by {by}: {reason}"),
        other => format!("child {pid} ({image}) is {other}"),
    }
}

/// If the wait is already over, takes what ends it (marks the message
/// read, the child reaped) and returns the parked call's result.
pub(super) fn satisfied(
    tx: &Tx<'_>,
    pid: Pid,
    on: &WaitOn,
    now: Timestamp,
) -> Result<Option<ToolResultRecord>, KernelError> {
    let ok = |content: String| Some(ToolResultRecord { outcome: Outcome::Ok, content });
    match on {
        WaitOn::Human(_) => Ok(None),
        WaitOn::Timer(until) => {
            Ok((*until <= now)
                .then(|| ToolResultRecord { outcome: Outcome::Ok, content: format!("slept until {until}") }))
        }
        WaitOn::Message(filter) => {
            // The first match, else any interrupt: an interrupt wakes a
            // receive whatever its filter.
            let unread = tx.inbox(pid, true)?;
            let found = unread
                .iter()
                .find(|m| filter.matches(m))
                .or_else(|| unread.iter().find(|m| m.kind == MessageKind::Interrupt));
            match found {
                Some(m) => {
                    tx.mark_read(&[m.id], now)?;
                    Ok(ok(m.render()))
                }
                None => Ok(None),
            }
        }
        WaitOn::Child(target) => {
            let candidates = match target {
                Some(c) => vec![*c],
                None => tx.children(pid)?,
            };
            for c in candidates {
                let child = tx.process(c)?;
                if child.state.is_terminal() && !tx.is_reaped(c)? {
                    tx.set_reaped(c)?;
                    return Ok(ok(child_status(c, &child.image, &child.state)));
                }
            }
            Ok(None)
        }
    }
}

/// Completes the call `pid` is parked on with `result` (transcript entry and
/// audit record) and wakes it.
pub(super) fn complete_parked(
    tx: &Tx<'_>,
    pid: Pid,
    result: ToolResultRecord,
    why: &str,
    now: Timestamp,
) -> Result<(), KernelError> {
    if let Some(parked) = tx.take_parked(pid)? {
        tx.insert_transcript(pid, parked.quantum, &parked.call, &result, now)?;
        tx.append_audit(
            &AuditDraft {
                actor: Actor::Kernel,
                kind: AuditKind::Kernel,
                action: AuditAction::Tool(ToolName::new(&parked.call.tool)?),
                pid: Some(pid),
                args: json!({"call_id": parked.call.call_id, "completed": why}),
                // A call completed by a refusal (a human's denial, a
                // request cancelled as edited) is a denial on the record.
                decision: (result.outcome == Outcome::Denied).then_some(AuditDecision::Deny),
                grant: None,
                outcome: result.outcome,
                result: Some(result.content.clone()),
                detail: Some(why.to_string()),
            },
            now,
        )?;
    }
    apply(tx, pid, None, Event::Wake, now)?;
    Ok(())
}

/// Re-checks the wait of `pid` (after it parked or was resumed) and wakes it if it is over.
pub(super) fn recheck(tx: &Tx<'_>, pid: Pid, now: Timestamp) -> Result<(), KernelError> {
    let p = tx.process(pid)?;
    let ProcState::Waiting { on } = &p.state else { return Ok(()) };
    if let Some(result) = satisfied(tx, pid, on, now)? {
        complete_parked(tx, pid, result, "its wait was already over", now)?;
    }
    Ok(())
}

/// What must happen when a process ends: its open requests are cancelled,
/// its parked call dropped, a parent waiting for it woken, and its own
/// children detached (they keep running).
pub(super) fn on_end(tx: &Tx<'_>, pid: Pid, now: Timestamp) -> Result<(), KernelError> {
    for id in tx.cancel_requests(pid, now)? {
        tx.append_audit(
            &AuditDraft {
                actor: Actor::Kernel,
                kind: AuditKind::Kernel,
                action: KernelAction::CancelRequest.into(),
                pid: Some(pid),
                args: json!({"request": id.get()}),
                decision: None,
                grant: None,
                outcome: Outcome::Ok,
                result: None,
                detail: Some(format!("request {id} cancelled: process {pid} ended")),
            },
            now,
        )?;
    }
    tx.take_parked(pid)?;
    let p = tx.process(pid)?;
    if let Some(ppid) = p.ppid {
        let parent = tx.process(ppid)?;
        settle_child_budget(tx, &parent, &p, now)?;
        let parent = tx.process(ppid)?;
        if let Some(on @ WaitOn::Child(target)) = waiting_on(&parent.state)
            && target.is_none_or(|t| t == pid)
            && let Some(result) = satisfied(tx, ppid, on, now)?
        {
            complete_parked(tx, ppid, result, "a child ended", now)?;
        }
    }
    tx.orphan_children(pid)
}

/// Releases what an ended child held of its parent's budget and charges
/// the parent what the child actually used instead.
fn settle_child_budget(
    tx: &Tx<'_>,
    parent: &crate::process::ProcessInfo,
    child: &crate::process::ProcessInfo,
    now: Timestamp,
) -> Result<(), KernelError> {
    use crate::budget::{Dimension, allotment, amounts};
    let held = allotment(&child.budget, &parent.budget);
    // What the child spent, its own children's included.
    let spent = amounts(&child.usage, now.since(child.created_at));
    let mut reserved = parent.reserved;
    let mut children_spent = parent.children_spent;
    for d in Dimension::ALL {
        let i = d as usize;
        reserved[i] = reserved[i].saturating_sub(held[i]);
        // Wall time is shared, not spent; the parent counts its own children.
        if !matches!(d, Dimension::WallTime | Dimension::Children) {
            children_spent[i] = children_spent[i].saturating_add(spent[i]).saturating_add(child.children_spent[i]);
        }
    }
    tx.set_child_books(parent.pid, parent.usage.children, &reserved, &children_spent)
}

/// Delivers a message and wakes its recipient if it was waiting for it (or
/// sleeping, and this is an interrupt). Refused for an ended recipient.
pub(super) fn deliver(tx: &Tx<'_>, from: &Actor, m: &NewMessage, now: Timestamp) -> Result<MsgId, KernelError> {
    if m.body.len() > crate::ipc::MAX_BODY_BYTES {
        return Err(KernelError::Invalid(format!(
            "message body is {} bytes, more than the {} allowed",
            m.body.len(),
            crate::ipc::MAX_BODY_BYTES
        )));
    }
    let to = tx.process(m.to)?;
    if to.state.is_terminal() {
        return Err(KernelError::Refused(format!(
            "process {} has ended ({}): nobody would read the message",
            m.to, to.state
        )));
    }
    let id = tx.insert_message(from, m, now)?;
    match waiting_on(&to.state) {
        Some(on @ WaitOn::Message(_)) => {
            if let Some(result) = satisfied(tx, m.to, on, now)? {
                complete_parked(tx, m.to, result, "a message arrived", now)?;
            }
        }
        Some(WaitOn::Timer(_)) if m.kind == MessageKind::Interrupt => {
            let content = format!("sleep interrupted by message {id} from {from} (it is in your inbox)");
            complete_parked(tx, m.to, ToolResultRecord { outcome: Outcome::Ok, content }, "an interrupt arrived", now)?;
        }
        Some(WaitOn::Timer(_) | WaitOn::Human(_) | WaitOn::Child(_)) | None => {}
    }
    Ok(id)
}

/// Renders messages for the model, one per line.
pub(super) fn render_messages(messages: &[Message]) -> String {
    if messages.is_empty() {
        return "no messages".to_string();
    }
    messages.iter().map(Message::render).collect::<Vec<_>>().join("\n")
}
