//! Kernel calls, executed inside the quantum's commit transaction.
//!
//! Each returns the tool result the model sees, or the wait to park on. A
//! problem the model caused (a pid that is not its child, a recipient that
//! ended, a grant it cannot delegate) is a result, not an error: the process
//! goes on. Only store failures are errors, and they abort the commit.

use std::fmt::Write as _;

use super::park::{self, deliver, render_messages, satisfied};
use super::{apply, lifecycle};
use crate::actor::Actor;
use crate::audit::Outcome;
use crate::budget::{Dimension, allotment, amounts};
use crate::caps::covers;
use crate::caps::{Right, Rights};
use crate::error::KernelError;
use crate::ids::Pid;
use crate::ipc::RequestKind;
use crate::memory::{MAX_OBJECT_BYTES, check_name, namespace_of};
use crate::process::{ProcessInfo, SpawnSpec};
use crate::quantum::ToolResultRecord;
use crate::state::{Event, WaitOn};
use crate::store::Tx;
use crate::syscall::{ObjectRef, SignalAction, Syscall};
use crate::time::Timestamp;

/// How a kernel call ended.
pub(super) enum SyscallOutcome {
    /// It completed with this result.
    Done(ToolResultRecord),
    /// The process parks on this (with a request to a human, for questions).
    Park(WaitOn, Option<RequestKind>),
}

fn ok(content: String) -> SyscallOutcome {
    SyscallOutcome::Done(ToolResultRecord { outcome: Outcome::Ok, content })
}

fn err(content: String) -> SyscallOutcome {
    SyscallOutcome::Done(ToolResultRecord { outcome: Outcome::Error, content })
}

/// The process `target` if it is a child of `me`.
fn own_child(tx: &Tx<'_>, me: Pid, target: Pid) -> Result<Result<ProcessInfo, String>, KernelError> {
    match tx.process(target) {
        Ok(p) if p.ppid == Some(me) => Ok(Ok(p)),
        Ok(_) => Ok(Err(format!("process {target} is not your child"))),
        Err(KernelError::NoSuchProcess(_)) => Ok(Err(format!("no process with pid {target}"))),
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
                    Ok((parent, spec)) => kept.push((parent, spec)),
                    Err(why) => dropped.push(why),
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
            for (parent, spec) in &kept {
                let id = tx.insert_grant(child, spec, Some(*parent), &Actor::Process(pid), now)?;
                let _ = write!(text, "\ngranted: {spec} (grant {id}, from your grant {parent})");
            }
            for why in &dropped {
                let _ = write!(text, "\ndropped: {why}");
            }
            Ok(ok(text))
        }
        Syscall::Wait { target } => {
            if let Some(t) = target {
                if let Err(why) = own_child(tx, pid, *t)? {
                    return Ok(err(why));
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
                    Some(_) => return Ok(err(format!("your handle on object {oid} does not allow read"))),
                    None => return Ok(err(format!("object {oid} is not in your view"))),
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
        Syscall::MemoryShare { oid, pid: child, rights } => {
            if let Err(why) = own_child(tx, pid, *child)? {
                return Ok(err(format!("{why}: objects are shared only with your own children")));
            }
            let Some(h) = tx.handle(pid, *oid)? else {
                return Ok(err(format!("object {oid} is not in your view")));
            };
            if !h.rights.is_superset(*rights) {
                return Ok(err(format!("you hold only {} on object {oid}: you cannot share {rights}", h.rights)));
            }
            tx.put_handle(*child, *oid, *rights, &Actor::Process(pid), now)?;
            Ok(ok(format!("shared object {oid} `{}` with process {child} ({rights})", h.name)))
        }
        Syscall::MemoryPin { oid, pinned } => {
            if !tx.set_pinned(pid, *oid, *pinned)? {
                return Ok(err(format!("object {oid} is not in your view")));
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
