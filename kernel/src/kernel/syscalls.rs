//! Kernel calls, executed inside the quantum's commit transaction.
//!
//! Each returns the tool result the model sees, or the wait to park on. A
//! problem the model caused (a pid that is not its child, a recipient that
//! ended, a grant it cannot delegate) is a result, not an error: the process
//! goes on. A refusal of authority the kernel alone can judge (a process
//! that is not the caller's child, an object outside its view, a grant it
//! cannot delegate) is a denial, audited with its check. Only store
//! failures are errors, and they abort the commit.

use std::fmt::Write as _;

use serde_json::json;

use super::park::{self, deliver, render_messages, satisfied};
use super::{apply, lifecycle};
use crate::actor::Actor;
use crate::audit::{AuditDecision, AuditDraft, AuditKind, KernelAction, Outcome};
use crate::budget::{Dimension, allotment, amounts};
use crate::caps::{Basis, Decision, GrantSpec, Resource, ResourceKind, Right, Rights, covers};
use crate::error::KernelError;
use crate::ids::{GrantId, ObjectId, Pid};
use crate::ipc::RequestKind;
use crate::memory::{MAX_OBJECT_BYTES, check_name, namespace_of};
use crate::process::{ProcessInfo, SpawnSpec};
use crate::quantum::ToolResultRecord;
use crate::state::{Event, WaitOn};
use crate::store::Tx;
use crate::syscall::{Check, Kinship, Need, ObjectRef, SignalAction, Syscall};
use crate::time::Timestamp;

/// How a kernel call ended.
pub(super) enum SyscallOutcome {
    /// It completed with this result.
    Done(ToolResultRecord),
    /// A spawn: its result, and the records of the decisions it made on
    /// the grants it was asked to delegate (appended after the call's).
    Spawned(ToolResultRecord, Vec<AuditDraft>),
    /// The kernel refused it for want of authority only it can see (not
    /// the caller's child, not in its memory view): a denial, audited with
    /// this check; the text is what the model sees.
    Denied(Check, String),
    /// The process parks on this (with a request to a human, for questions).
    Park(WaitOn, Option<RequestKind>),
}

fn ok(content: String) -> SyscallOutcome {
    SyscallOutcome::Done(ToolResultRecord { outcome: Outcome::Ok, content })
}

fn err(content: String) -> SyscallOutcome {
    SyscallOutcome::Done(ToolResultRecord { outcome: Outcome::Error, content })
}

/// A refusal of `right` on `resource`, decided on `basis` (see [`SyscallOutcome::Denied`]).
fn denied(resource: Resource, right: Right, kinship: Kinship, basis: Basis, why: String) -> SyscallOutcome {
    let check = Check { need: Need { resource, right, kinship }, decision: Decision::refused(basis) };
    SyscallOutcome::Denied(check, format!("permission denied: {why}"))
}

/// The resource an object is, for a check: `memory:NAMESPACE/NAME`, or
/// `memory:object/OID` for one that does not exist.
fn object_resource(tx: &Tx<'_>, oid: ObjectId) -> Result<Resource, KernelError> {
    Ok(match tx.object(oid)? {
        Some(o) => Resource::new(ResourceKind::Memory, format!("{}/{}", o.namespace, o.name)),
        None => Resource::new(ResourceKind::Memory, format!("object/{oid}")),
    })
}

/// The process `target` if it is a child of `me`; otherwise how the call
/// ends: a denial on kinship (`right` on `process:TARGET`) or, for no such
/// process, an error; either reason followed by `note`.
fn own_child(
    tx: &Tx<'_>,
    me: Pid,
    target: Pid,
    right: Right,
    note: &str,
) -> Result<Result<ProcessInfo, SyscallOutcome>, KernelError> {
    match tx.process(target) {
        Ok(p) if p.ppid == Some(me) => Ok(Ok(p)),
        Ok(_) => {
            let resource = Resource::new(ResourceKind::Process, target.to_string());
            let why = format!("process {target} is not your child{note}");
            Ok(Err(denied(resource, right, Kinship::Child(target), Basis::Kinship, why)))
        }
        Err(KernelError::NoSuchProcess(_)) => Ok(Err(err(format!("no process with pid {target}{note}")))),
        Err(e) => Err(e),
    }
}

pub(super) fn execute(
    tx: &Tx<'_>,
    me: &ProcessInfo,
    call: &Syscall,
    now: Timestamp,
) -> Result<SyscallOutcome, KernelError> {
    let pid = me.pid;
    match call {
        Syscall::Spawn { image, goal, grants, budget: asked } => {
            let live = tx.live_grants(pid, now)?;
            let mut kept = Vec::new();
            let mut dropped = Vec::new();
            for wanted in image.grants.iter().chain(grants) {
                match covers(&live, wanted, now) {
                    Ok((parent, spec)) => kept.push((wanted, parent, spec)),
                    Err(why) => dropped.push((wanted, why)),
                }
            }
            // The child's budget is carved out of what this process has left.
            let mut used = amounts(&me.usage, now.since(me.created_at));
            if let Err(why) = me.budget.child_allowed(&used) {
                return Ok(err(why));
            }
            // This spawn counts: it is a tool call, and the child is a child.
            used[Dimension::ToolCalls.index()] += 1;
            used[Dimension::Children.index()] += 1;
            let spare = me.budget.spare(&used, &me.held_for_children());
            // A child that asked for nothing gets its image's budget, but at
            // most half of what can be spared: more children may follow.
            let budget = match asked.as_deref() {
                Some(b) => image.budget.cap(b).cap(&spare),
                None => image.budget.cap(&spare.half()),
            };
            let starved = [Dimension::Quanta, Dimension::ModelCalls, Dimension::ToolCalls]
                .into_iter()
                .find(|d| spare.get(*d).is_some() && budget.get(*d) == Some(0));
            if let Some(d) = starved {
                let left = me.budget.remaining(&used, &me.held_for_children()).get(d).unwrap_or(0);
                return Ok(err(format!(
                    "no {} to spare for a child: {left} left, which you keep to wait and exit",
                    d.as_str()
                )));
            }
            let spec = SpawnSpec {
                image: image.digest.clone(),
                goal: goal.clone(),
                workspace: me.workspace.clone(),
                parent: Some(pid),
                priority: me.priority,
                actor: Actor::Process(pid),
                budget,
            };
            let child = match lifecycle::spawn_in(tx, &spec, now) {
                Ok(c) => c,
                Err(KernelError::Invalid(why)) => return Ok(err(why)),
                Err(e) => return Err(e),
            };
            let mut reserved = me.reserved;
            for (r, h) in reserved.iter_mut().zip(allotment(&budget, &me.budget)) {
                *r += h;
            }
            tx.set_child_books(pid, me.usage.children + 1, &reserved, &me.children_spent)?;
            let mut text = format!("spawned {} as pid {child}", image.name);
            if !budget.is_unlimited() {
                let _ = write!(text, "\nbudget: {budget}");
            }
            // What the spawn could not delegate, dropped or narrowed, is
            // a refusal of authority like any other: audited with its check.
            let mut refusals = Vec::new();
            for (wanted, parent, spec) in &kept {
                let id = tx.insert_grant(child, spec, Some(*parent), &Actor::Process(pid), now)?;
                let _ = write!(text, "\ngranted: {spec} (grant {id}, from your grant {parent})");
                if *spec != **wanted {
                    let why = format!("narrowed to `{spec}` (grant {id}): your grant {parent} holds no more");
                    refusals.push(delegation(pid, child, wanted, Some(*parent), why));
                }
            }
            for (wanted, why) in &dropped {
                let _ = write!(text, "\ndropped: {why}");
                refusals.push(delegation(pid, child, wanted, None, format!("dropped: {why}")));
            }
            Ok(SyscallOutcome::Spawned(ToolResultRecord { outcome: Outcome::Ok, content: text }, refusals))
        }
        Syscall::Wait { target } => {
            if let Some(t) = target {
                if let Err(refused) = own_child(tx, pid, *t, Right::Read, "")? {
                    return Ok(refused);
                }
                if tx.is_reaped(*t)? {
                    return Ok(err(format!("child {t} was already waited for")));
                }
            } else {
                let mut any = false;
                for c in tx.children(pid)? {
                    let child = tx.process(c)?;
                    any |= !child.state.is_terminal() || !tx.is_reaped(c)?;
                }
                if !any {
                    return Ok(err("you have no children left to wait for".to_string()));
                }
            }
            let on = WaitOn::Child(*target);
            Ok(match satisfied(tx, pid, &on, now)? {
                Some(result) => SyscallOutcome::Done(result),
                None => SyscallOutcome::Park(on, None),
            })
        }
        Syscall::Children => {
            let children = tx.children(pid)?;
            if children.is_empty() {
                return Ok(ok("you have no children".to_string()));
            }
            let mut lines = Vec::new();
            for c in children {
                let p = tx.process(c)?;
                lines.push(format!("pid {c} ({}): {} - {}", p.image, p.state, first_chars(&p.goal, 80)));
            }
            Ok(ok(lines.join("\n")))
        }
        Syscall::Signal { pid: target, action } => {
            let p = match tx.process(*target) {
                Ok(p) => p,
                Err(KernelError::NoSuchProcess(_)) => return Ok(err(format!("no process with pid {target}"))),
                Err(e) => return Err(e),
            };
            if *target == pid {
                return Ok(err("a process cannot signal itself (use exit to end)".to_string()));
            }
            let by = Actor::Process(pid);
            let event = match action {
                SignalAction::Pause => Event::Pause { by },
                SignalAction::Resume => Event::Resume { by },
                SignalAction::Kill => Event::Kill { by, reason: format!("killed by process {pid}") },
            };
            match apply(tx, *target, None, event, now) {
                Ok((state, _, _)) => {
                    if *action == SignalAction::Resume {
                        park::recheck(tx, *target, now)?;
                    }
                    Ok(ok(format!("process {target} ({}) is now {state}", p.image)))
                }
                Err(KernelError::Transition(t)) => Ok(err(t.to_string())),
                Err(e) => Err(e),
            }
        }
        Syscall::Send(m) => match deliver(tx, &Actor::Process(pid), m, now) {
            Ok(id) => Ok(ok(format!("sent message {id} to process {}", m.to))),
            Err(KernelError::NoSuchProcess(p)) => Ok(err(format!("no process with pid {p}"))),
            Err(KernelError::Refused(why) | KernelError::Invalid(why)) => Ok(err(why)),
            Err(e) => Err(e),
        },
        Syscall::Read { filter } => {
            let found = tx.unread_matching(pid, filter, 20)?;
            let ids: Vec<_> = found.iter().map(|m| m.id).collect();
            tx.mark_read(&ids, now)?;
            Ok(ok(render_messages(&found)))
        }
        Syscall::Receive { filter } => {
            let on = WaitOn::Message(filter.clone());
            Ok(match satisfied(tx, pid, &on, now)? {
                Some(result) => SyscallOutcome::Done(result),
                None => SyscallOutcome::Park(on, None),
            })
        }
        Syscall::Sleep { duration } => {
            if duration.is_zero() {
                return Ok(ok("slept 0 s".to_string()));
            }
            Ok(SyscallOutcome::Park(WaitOn::Timer(now.plus(*duration)), None))
        }
        Syscall::MemoryWrite { name, content, kind } => {
            if let Err(why) = check_name(name) {
                return Ok(err(why));
            }
            if content.len() > MAX_OBJECT_BYTES {
                return Ok(err(format!(
                    "content is {} bytes, more than the {MAX_OBJECT_BYTES} an object may hold",
                    content.len()
                )));
            }
            let ns = namespace_of(pid);
            let (oid, version) = tx.put_object(&ns, name, kind, content, pid, now)?;
            tx.put_handle(pid, oid, Rights::parse("read,write").unwrap_or_default(), &Actor::Process(pid), now)?;
            Ok(ok(format!("wrote object {oid} `{name}` ({kind}, {} bytes, version {version})", content.len())))
        }
        Syscall::MemoryRead { target } => {
            let found = match target {
                ObjectRef::Name(name) => tx.object_named(&namespace_of(pid), name)?,
                ObjectRef::Oid(oid) => match tx.handle(pid, *oid)? {
                    Some(h) if h.rights.contains(Right::Read) => tx.object(*oid)?,
                    Some(_) => {
                        let why = format!("your handle on object {oid} does not allow read");
                        return Ok(denied(object_resource(tx, *oid)?, Right::Read, Kinship::None, Basis::View, why));
                    }
                    None => {
                        let why = format!("object {oid} is not in your view");
                        return Ok(denied(object_resource(tx, *oid)?, Right::Read, Kinship::None, Basis::View, why));
                    }
                },
            };
            Ok(match found {
                Some(o) => ok(format!(
                    "object {} `{}/{}` ({}, version {}):\n{}",
                    o.oid, o.namespace, o.name, o.kind, o.version, o.content
                )),
                None => err(format!("no object {}", describe(target))),
            })
        }
        Syscall::MemoryList { namespace } => {
            let view: Vec<_> =
                tx.view(pid)?.into_iter().filter(|h| namespace.as_ref().is_none_or(|n| *n == h.namespace)).collect();
            if view.is_empty() {
                return Ok(ok("your view is empty".to_string()));
            }
            let lines: Vec<String> = view
                .iter()
                .map(|h| {
                    format!(
                        "{} {}/{} ({}, {} bytes, v{}, {}{})",
                        h.oid,
                        h.namespace,
                        h.name,
                        h.kind,
                        h.bytes,
                        h.version,
                        h.rights,
                        if h.pinned { ", pinned" } else { "" }
                    )
                })
                .collect();
            Ok(ok(lines.join("\n")))
        }
        Syscall::MemorySearch { query, namespace, limit } => {
            let hits = tx.search_objects(pid, query, namespace.as_deref(), *limit)?;
            if hits.is_empty() {
                let words = query.words().join(" ");
                return Ok(ok(format!("no object you may read matches `{words}`")));
            }
            let lines: Vec<String> = hits
                .iter()
                .map(|h| {
                    let snippet = h.snippet.split_whitespace().collect::<Vec<_>>().join(" ");
                    format!("{} {}/{} ({}, score {:.2}): {snippet}", h.oid, h.namespace, h.name, h.kind, h.score)
                })
                .collect();
            Ok(ok(lines.join("\n")))
        }
        Syscall::MemoryShare { oid, pid: child, rights } => {
            let note = ": objects are shared only with your own children";
            if let Err(refused) = own_child(tx, pid, *child, Right::Send, note)? {
                return Ok(refused);
            }
            // The first right asked for that the caller's handle lacks (all of them without one).
            let held = tx.handle(pid, *oid)?;
            let lacking = rights.iter().find(|r| !held.as_ref().is_some_and(|h| h.rights.contains(*r)));
            if let Some(right) = lacking {
                let why = match &held {
                    None => format!("object {oid} is not in your view"),
                    Some(h) => format!("you hold only {} on object {oid}: you cannot share {rights}", h.rights),
                };
                return Ok(denied(object_resource(tx, *oid)?, right, Kinship::None, Basis::View, why));
            }
            let Some(h) = held else {
                return Ok(err(format!("object {oid} is not in your view")));
            };
            tx.put_handle(*child, *oid, *rights, &Actor::Process(pid), now)?;
            Ok(ok(format!("shared object {oid} `{}` with process {child} ({rights})", h.name)))
        }
        Syscall::MemoryPin { oid, pinned } => {
            if !tx.set_pinned(pid, *oid, *pinned)? {
                let why = format!("object {oid} is not in your view");
                return Ok(denied(object_resource(tx, *oid)?, Right::Read, Kinship::None, Basis::View, why));
            }
            Ok(ok(format!("{} object {oid}", if *pinned { "pinned" } else { "unpinned" })))
        }
        Syscall::AskHuman { question } => Ok(SyscallOutcome::Park(
            // The request id is filled in by the commit, which creates it.
            WaitOn::Human(crate::ids::RequestId(0)),
            Some(RequestKind::Question { text: question.clone() }),
        )),
    }
}

/// The record of a grant `parent` asked to delegate to `child` and could
/// not, wholly (`dropped`) or in part (narrowed by its covering `grant`).
fn delegation(parent: Pid, child: Pid, wanted: &GrantSpec, grant: Option<GrantId>, why: String) -> AuditDraft {
    let check = match grant {
        Some(g) => format!("delegate {} {}: deny past grant {g}", wanted.rights, wanted.resource),
        None => format!("delegate {} {}: deny (no delegable grant covers it)", wanted.rights, wanted.resource),
    };
    AuditDraft {
        actor: Actor::Kernel,
        kind: AuditKind::Kernel,
        action: KernelAction::Delegate.into(),
        pid: Some(parent),
        args: json!({ "child": child.get(), "grant": wanted.to_string() }),
        decision: Some(AuditDecision::Deny),
        grant,
        outcome: Outcome::Denied,
        result: None,
        detail: Some(format!("{why} [{check}]")),
    }
}

fn describe(target: &ObjectRef) -> String {
    match target {
        ObjectRef::Name(n) => format!("named `{n}` in your namespace"),
        ObjectRef::Oid(o) => format!("with id {o}"),
    }
}

fn first_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}
