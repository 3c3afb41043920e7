//! Creating and ending processes: images, spawn, kill.

use serde_json::json;

use super::{Kernel, apply};
use crate::actor::Actor;
use crate::audit::{AuditAction, AuditDraft, AuditKind, KernelAction, Outcome, sha256_hex};
use crate::caps::GrantSpec;
use crate::error::KernelError;
use crate::ids::{ImageDigest, Pid};
use crate::process::SpawnSpec;
use crate::state::{Event, ProcState};
use crate::store::Tx;
use crate::time::Timestamp;
use crate::tool_name::ToolName;

/// Longest goal accepted, in bytes.
pub const MAX_GOAL_BYTES: usize = 64 * 1024;

impl Kernel {
    /// Registers an image spec (content-addressed; registering the same text twice is a no-op).
    pub fn register_image(&self, name: &str, version: &str, spec: &str) -> Result<ImageDigest, KernelError> {
        let digest = ImageDigest(sha256_hex(spec.as_bytes()));
        let d = digest.clone();
        self.write(|tx| tx.insert_image(&d, name, version, spec, self.now()))?;
        Ok(digest)
    }

    /// The (name, version, spec text) of a registered image.
    pub fn image_spec(&self, digest: &ImageDigest) -> Result<(String, String, String), KernelError> {
        self.read(|tx| tx.image(digest))
    }

    /// Creates a runnable process. Audited as the spawning actor's action.
    pub fn spawn(&self, spec: &SpawnSpec) -> Result<Pid, KernelError> {
        self.spawn_with_grants(spec, &[])
    }

    /// Creates a runnable root process holding `grants` (an operator's and
    /// its image's; the operator is trusted, so nothing is attenuated).
    pub fn spawn_with_grants(&self, spec: &SpawnSpec, grants: &[GrantSpec]) -> Result<Pid, KernelError> {
        check_goal(&spec.goal)?;
        self.write(|tx| {
            let now = self.now();
            let pid = spawn_in(tx, spec, now)?;
            for g in grants {
                tx.insert_grant(pid, g, None, &spec.actor, now)?;
            }
            Ok(pid)
        })
    }

    /// Kills a process in any non-terminal state. An in-flight quantum loses its
    /// lease at once (its commit will be refused); its scheduler cancels it.
    pub fn kill(&self, pid: Pid, by: Actor, reason: &str) -> Result<ProcState, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let (state, _, _) = apply(tx, pid, None, Event::Kill { by: by.clone(), reason: reason.to_string() }, now)?;
            Ok(state)
        })
    }
}

fn check_goal(goal: &str) -> Result<(), KernelError> {
    if goal.trim().is_empty() {
        return Err(KernelError::Invalid("goal is empty".to_string()));
    }
    if goal.len() > MAX_GOAL_BYTES {
        return Err(KernelError::Invalid(format!(
            "goal is {} bytes, more than the {MAX_GOAL_BYTES} allowed",
            goal.len()
        )));
    }
    Ok(())
}

/// Inserts a process and its spawn record in the caller's transaction.
pub(super) fn spawn_in(tx: &Tx<'_>, spec: &SpawnSpec, now: Timestamp) -> Result<Pid, KernelError> {
    check_goal(&spec.goal)?;
    let (name, _, _) = tx.image(&spec.image)?;
    if let Some(parent) = spec.parent {
        tx.process(parent)?;
    }
    let pid = tx.insert_process(spec, &name, now)?;
    tx.append_audit(
        &AuditDraft {
            actor: spec.actor.clone(),
            kind: AuditKind::Operator,
            action: KernelAction::Spawn.into(),
            pid: Some(pid),
            args: json!({
                "image": name,
                "image_digest": spec.image.0,
                "goal": spec.goal,
                "workspace": spec.workspace.to_string_lossy(),
                "parent": spec.parent.map(Pid::get),
                "priority": spec.priority,
            }),
            decision: None,
            grant: None,
            outcome: Outcome::Ok,
            result: None,
            detail: Some(format!("spawned {name} as pid {pid}")),
        },
        now,
    )?;
    Ok(pid)
}

/// If `pid` has an external effect whose end was never recorded, records its
/// outcome as unknown (audit and transcript) so it is shown, never silently re-run.
pub(super) fn settle_unknown_effect(tx: &Tx<'_>, pid: Pid, why: &str, now: Timestamp) -> Result<(), KernelError> {
    let Some((quantum, call)) = tx.take_effect(pid)? else {
        return Ok(());
    };
    // An approved call that had started is done with too: the next lease
    // must not find it still approved and run it again.
    if tx.parked(pid)?.is_some_and(|p| p.approved) {
        tx.take_parked(pid)?;
    }
    let content = format!(
        "outcome unknown: {why} after `{}` started and before its result was recorded; it was not re-run. \
         Check its effect before trying again.",
        call.tool
    );
    let args: serde_json::Value = serde_json::from_str(&call.args).unwrap_or(serde_json::Value::Null);
    tx.append_audit(
        &AuditDraft {
            actor: Actor::Kernel,
            kind: AuditKind::Effect,
            action: AuditAction::Tool(ToolName::new(&call.tool)?),
            pid: Some(pid),
            args,
            decision: None,
            grant: None,
            outcome: Outcome::Unknown,
            result: None,
            detail: Some(why.to_string()),
        },
        now,
    )?;
    let result = crate::quantum::ToolResultRecord { outcome: Outcome::Unknown, content };
    tx.insert_transcript(pid, quantum, &call, &result, now)
}
