//! Operator and scheduler operations on parked and related processes:
//! messages, pause and resume, killing a tree, timers.

use serde_json::json;

use super::park::{complete_parked, deliver, recheck};
use super::{Kernel, apply};
use crate::actor::Actor;
use crate::audit::{AuditDraft, AuditKind, KernelAction, Outcome};
use crate::error::KernelError;
use crate::ids::{MsgId, Pid};
use crate::ipc::{Message, NewMessage};
use crate::quantum::ToolResultRecord;
use crate::state::{Event, ProcState};
use crate::store::Tx;
use crate::time::Timestamp;

fn operator_record(by: &Actor, action: KernelAction, pid: Pid, args: serde_json::Value, detail: String) -> AuditDraft {
    AuditDraft {
        actor: by.clone(),
        kind: AuditKind::Operator,
        action: action.into(),
        pid: Some(pid),
        args,
        decision: None,
        grant: None,
        outcome: Outcome::Ok,
        result: None,
        detail: Some(detail),
    }
}

/// `pid` and all its descendants, parents before children.
fn tree(tx: &Tx<'_>, pid: Pid) -> Result<Vec<Pid>, KernelError> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        out.extend(tx.children(out[i])?);
        i += 1;
    }
    Ok(out)
}

impl Kernel {
    /// Records an operator's decision that concerns no one process (a
    /// scheduler that runs programs unconfined), in the chain like any other.
    pub fn record_operator(
        &self,
        by: &Actor,
        action: KernelAction,
        args: serde_json::Value,
        detail: &str,
    ) -> Result<(), KernelError> {
        self.write(|tx| {
            let draft = AuditDraft {
                actor: by.clone(),
                kind: AuditKind::Operator,
                action: action.into(),
                pid: None,
                args: args.clone(),
                decision: None,
                grant: None,
                outcome: Outcome::Ok,
                result: None,
                detail: Some(detail.to_string()),
            };
            tx.append_audit(&draft, self.now())?;
            Ok(())
        })
    }

    /// Sends a message as `by` (the operator can always send).
    pub fn send(&self, m: &NewMessage, by: &Actor) -> Result<MsgId, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let id = deliver(tx, by, m, now)?;
            let args = json!({"message": id.get(), "kind": m.kind.as_str(), "channel": m.channel, "body": m.body});
            tx.append_audit(
                &operator_record(by, KernelAction::Send, m.to, args, format!("message {id} to process {}", m.to)),
                now,
            )?;
            Ok(id)
        })
    }

    /// Every message sent to a process, oldest first.
    pub fn inbox(&self, pid: Pid) -> Result<Vec<Message>, KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            tx.inbox(pid, false)
        })
    }

    /// Kills a process in any non-terminal state; with `tree`, its
    /// descendants too (otherwise they are detached and keep running).
    /// Cancels its open requests. Returns the pids killed.
    pub fn kill_tree(&self, pid: Pid, tree_too: bool, by: Actor, reason: &str) -> Result<Vec<Pid>, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let targets = if tree_too { tree(tx, pid)? } else { vec![pid] };
            let mut killed = Vec::new();
            // Children first, so a parent ending does not detach them before they are reached.
            for t in targets.into_iter().rev() {
                let p = tx.process(t)?;
                if p.state.is_terminal() && t != pid {
                    continue;
                }
                apply(tx, t, None, Event::Kill { by: by.clone(), reason: reason.to_string() }, now)?;
                killed.push(t);
            }
            killed.reverse();
            Ok(killed)
        })
    }

    /// Changes a live process's scheduling priority (higher runs first);
    /// returns the old one. Audited.
    pub fn renice(&self, pid: Pid, priority: i32, by: &Actor) -> Result<i32, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let p = tx.process(pid)?;
            if p.state.is_terminal() {
                return Err(KernelError::Refused(format!("process {pid} has ended ({})", p.state)));
            }
            tx.set_priority(pid, priority)?;
            let args = json!({"from": p.priority, "to": priority});
            tx.append_audit(
                &operator_record(by, KernelAction::Renice, pid, args, format!("priority {} -> {priority}", p.priority)),
                now,
            )?;
            Ok(p.priority)
        })
    }

    /// Pauses a runnable, running or waiting process. A running quantum loses
    /// its lease (its scheduler cancels it, as for a kill).
    pub fn pause(&self, pid: Pid, by: Actor) -> Result<ProcState, KernelError> {
        self.write(|tx| {
            let now = self.now();
            Ok(apply(tx, pid, None, Event::Pause { by: by.clone() }, now)?.0)
        })
    }

    /// Returns a paused process to exactly the state it was paused in. A
    /// wait that ended meanwhile (a message, a child) completes at once;
    /// nothing else is dispatched.
    pub fn resume(&self, pid: Pid, by: Actor) -> Result<ProcState, KernelError> {
        self.write(|tx| {
            let now = self.now();
            apply(tx, pid, None, Event::Resume { by: by.clone() }, now)?;
            recheck(tx, pid, now)?;
            Ok(tx.process(pid)?.state)
        })
    }

    /// Wakes every process whose sleep is over; returns them.
    pub fn wake_timers(&self) -> Result<Vec<Pid>, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let due = tx.due_timers(now)?;
            for pid in &due {
                let content = "slept until the deadline".to_string();
                complete_parked(tx, *pid, ToolResultRecord { outcome: Outcome::Ok, content }, "timer", now)?;
            }
            Ok(due)
        })
    }

    /// The earliest sleep deadline among waiting processes.
    pub fn next_timer(&self) -> Result<Option<Timestamp>, KernelError> {
        self.read(|tx| tx.next_timer())
    }

    /// A process's children, in pid order.
    pub fn children(&self, pid: Pid) -> Result<Vec<Pid>, KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            tx.children(pid)
        })
    }
}
