//! Step 5 of a quantum: dispatching the one call it chose (or the call a
//! human approved) and committing its result — a local call run on the
//! spot, an external effect behind its intent record (committed with
//! retries, its result existing nowhere else), a dynamic tool under the
//! wall-time budget, a kernel call inside the commit.
use std::sync::Arc;
use std::time::Duration;

use libos_images::Image;
use libos_kernel::budget::{Dimension, amounts};
use libos_kernel::caps::{Basis, Decision, Effect, Resource, Right};
use libos_kernel::syscall::{Check, Need, SpawnImage, Syscall};
use libos_kernel::{
    Action, ApprovedCall, Authorization, Binding, EffectIntent, KernelError, Lease, ModelCallRecord, Next, Outcome,
    QuantumCommit, ToolCallRecord, ToolResultRecord,
};
use libos_sandbox::{Cancel, CancelOnDrop, Limits, NetGate};
use libos_tools::{
    Caller, Dispatch, Invocation, Refusal, ToolCall, ToolContext, ToolHandler, ToolOutput, ToolSet, Workspace,
};

use crate::netgate::GrantGate;

use super::{QuantumEnv, QuantumOutcome};

/// Re-dispatches a call a human approved, exactly as it was parked and as
/// the lease found it in the audit chain; a call that is not what the chain
/// holds never runs.
pub(super) async fn resume_approved(
    env: &QuantumEnv,
    lease: &Arc<Lease>,
    image: &Image,
    tools: &ToolSet,
    workspace: &Workspace,
    approved: &ApprovedCall,
) -> Result<QuantumOutcome, KernelError> {
    let call_rec = &approved.call;
    let not_run = |why: String, checks: Vec<Check>, outcome: Outcome| {
        // The model hears why; the call's audit record says it too.
        let result = ToolResultRecord { outcome, content: format!("approved call not run: {why}") };
        let action = Action::Done { result, next: Next::Continue };
        commit(env, lease, None, call_rec.clone(), checks, action, Vec::new())
    };
    let (resource, right) = match &approved.binding {
        Binding::Intact { resource, right } => (resource, *right),
        // Not what the chain recorded: a refusal of authority, audited as a
        // denial with the check of what the approval was for.
        Binding::Broken { why, need } => {
            let checks = need
                .iter()
                .map(|(resource, right)| Check {
                    need: Need::grant(resource.clone(), *right),
                    decision: Decision::refused(Basis::Binding),
                })
                .collect();
            return not_run(why.clone(), checks, Outcome::Denied).await;
        }
    };
    match ToolCall::parse(&call_rec.tool, &call_rec.args, tools) {
        Ok(call) => {
            let approved = Some((resource, right));
            dispatch(env, lease, workspace, image.limits, None, call_rec.clone(), &call, Vec::new(), approved).await
        }
        // The stored call no longer parses (its image changed).
        Err(reason) => not_run(reason.to_string(), Vec::new(), Outcome::Error).await,
    }
}

/// Checks capabilities, then dispatches and commits one parsed call.
#[allow(clippy::too_many_arguments)]
pub(super) async fn dispatch(
    env: &QuantumEnv,
    lease: &Arc<Lease>,
    workspace: &Workspace,
    limits: Limits,
    model_call: Option<ModelCallRecord>,
    call_rec: ToolCallRecord,
    call: &ToolCall,
    seen: Vec<libos_kernel::MsgId>,
    approved: Option<(&Resource, Right)>,
) -> Result<QuantumOutcome, KernelError> {
    let kernel = &env.kernel;
    let error = |content: String| Action::Done {
        result: ToolResultRecord { outcome: Outcome::Error, content },
        next: Next::Continue,
    };
    let caller = Caller { workspace, parent: lease.process.ppid };
    let needs = match call.needs(caller) {
        Ok(n) => n,
        Err(Refusal::Invalid(e)) => {
            return commit(env, lease, model_call, call_rec, Vec::new(), error(e), seen).await;
        }
        Err(Refusal::Confined { need, reason }) => {
            // Audited as the denial it is, naming what was asked for.
            let check = Check { need, decision: Decision::confined() };
            let result = ToolResultRecord { outcome: Outcome::Denied, content: format!("permission denied: {reason}") };
            let action = Action::Done { result, next: Next::Continue };
            return commit(env, lease, model_call, call_rec, vec![check], action, seen).await;
        }
    };
    let auth = if needs.is_empty() {
        // Nothing to check (`exit`, `now`, own inbox, own children): no store call.
        Authorization { effect: Effect::Allow, checks: Vec::new() }
    } else {
        let (pid, needs, approved) = (lease.pid, needs.clone(), approved.map(|(r, right)| (r.clone(), right)));
        kernel.call(move |k| k.authorize(pid, &needs, approved.as_ref().map(|(r, right)| (r, *right)))).await?
    };
    let action = match auth.effect {
        Effect::Deny => Action::Done {
            result: ToolResultRecord { outcome: Outcome::Denied, content: auth.denial() },
            next: Next::Continue,
        },
        Effect::Ask => match auth.asking() {
            Some(c) => {
                Action::Ask { resource: c.need.resource.clone(), right: c.need.right, hints: call.hints().cloned() }
            }
            None => error("permission check asked without saying what for".to_string()),
        },
        Effect::Allow => {
            // The tools act only on the files these checks were about.
            let ctx = ToolContext {
                pid: Some(lease.pid),
                workspace: workspace.clone(),
                now: env.kernel.now(),
                sandbox: env.sandbox.clone(),
                cancel: Cancel::new(),
                time_left: None,
                limits,
                allowed: needs.clone(),
                net: None,
                http: env.http.clone(),
            };
            match call.dispatch(caller) {
                Err(e) => error(e),
                Ok(Dispatch::Exit { result }) => Action::Done {
                    result: ToolResultRecord { outcome: Outcome::Ok, content: "process exited".to_string() },
                    next: Next::Exit { code: 0, result },
                },
                Ok(Dispatch::Local) => Action::Done { result: tool_result(call.run(&ctx)), next: Next::Continue },
                Ok(Dispatch::External) => {
                    // The grants are read before the intent is written: a store
                    // failing there must leave no effect to settle as unknown.
                    let (l, intent) = (lease.clone(), EffectIntent { call: call_rec.clone() });
                    let gate = kernel
                        .call(move |k| {
                            let gate = GrantGate::for_process(k, l.pid, &intent.call.tool)?;
                            k.begin_effect(&l, &intent)?;
                            Ok::<_, KernelError>(gate)
                        })
                        .await?;
                    // Dropping the quantum (a kill, a shutdown) stops what it started.
                    let cancel = CancelOnDrop(Cancel::new());
                    let net = gate.map(|g| Arc::new(g) as Arc<dyn NetGate>);
                    let ctx = ToolContext {
                        cancel: cancel.0.clone(),
                        time_left: wall_time_left(&lease.process, ctx.now),
                        net,
                        ..ctx
                    };
                    let out = if call.is_dynamic() {
                        run_dynamic(call, &ctx).await
                    } else if let Some(recorded) = env.recorded.as_ref().filter(|_| call.is_open_world()) {
                        answer_recorded(recorded.as_ref(), call, &ctx).await
                    } else {
                        // Effects may take long (a program runs up to its time
                        // limit): off the async workers.
                        let call = call.clone();
                        tokio::task::spawn_blocking(move || call.run(&ctx))
                            .await
                            .unwrap_or_else(|e| ToolOutput::Error(format!("the tool stopped: {e}")))
                    };
                    drop(cancel);
                    let action = Action::Done { result: tool_result(out), next: Next::Continue };
                    let commit = QuantumCommit { model_call, call: call_rec, checks: auth.checks, action, seen };
                    return commit_effect(env, lease, commit).await;
                }
                Ok(Dispatch::Kernel(syscall)) => Action::Syscall(syscall),
                Ok(Dispatch::Spawn { image, goal, grants, budget }) => match resolve_image(env, &image).await {
                    Ok(image) => Action::Syscall(Syscall::Spawn {
                        image: Box::new(image),
                        goal,
                        grants,
                        budget: budget.map(Box::new),
                    }),
                    Err(SpawnImageError::Catalog(e)) => error(e.to_string()),
                    // The store's failure, not the model's: transient ones give the quantum back.
                    Err(SpawnImageError::Store(e)) => return Err(e),
                },
            }
        }
    };
    commit(env, lease, model_call, call_rec, auth.checks, action, seen).await
}

/// Runs a dynamic tool's call through its handler, for no longer than the
/// process's wall time allows (the handler bounds its own time too; this
/// is the backstop). Dropping the quantum drops the handler's future.
async fn run_dynamic(call: &ToolCall, ctx: &ToolContext) -> ToolOutput {
    let Some(run) = call.run_dynamic(ctx) else {
        return ToolOutput::Error(format!("`{}` has no handler", call.name()));
    };
    match ctx.time_left {
        Some(left) => tokio::time::timeout(left, run).await.unwrap_or_else(|_| {
            ToolOutput::Error(format!(
                "`{}` was stopped when the wall_time budget ran out ({} s)",
                call.name(),
                left.as_secs()
            ))
        }),
        None => run.await,
    }
}

/// A built-in open-world call answered by `recorded` (a replay), never sent.
async fn answer_recorded(recorded: &dyn ToolHandler, call: &ToolCall, ctx: &ToolContext) -> ToolOutput {
    let canonical = call.canonical_args();
    let args = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&canonical) {
        Ok(a) => a,
        Err(e) => return ToolOutput::Error(format!("`{}` could not be answered from the record: {e}", call.name())),
    };
    let tool = call.name().clone();
    recorded.call(Invocation { tool: &tool, args: &args, canonical: &canonical }, ctx).await
}

async fn commit(
    env: &QuantumEnv,
    lease: &Arc<Lease>,
    model_call: Option<ModelCallRecord>,
    call: ToolCallRecord,
    checks: Vec<libos_kernel::syscall::Check>,
    action: Action,
    seen: Vec<libos_kernel::MsgId>,
) -> Result<QuantumOutcome, KernelError> {
    let (lease, commit) = (lease.clone(), QuantumCommit { model_call, call, checks, action, seen });
    let receipt = env.kernel.call(move |k| k.commit_quantum(&lease, &commit)).await?;
    Ok(QuantumOutcome::Committed(receipt.state))
}

/// Commits the quantum of an external effect that has run. Its result
/// exists nowhere else, so a transient store failure is waited out (the
/// lease's generation fences every try) for as long as the lease was
/// granted, before the quantum gives up and the effect is settled as
/// unknown.
async fn commit_effect(
    env: &QuantumEnv,
    lease: &Arc<Lease>,
    commit: QuantumCommit,
) -> Result<QuantumOutcome, KernelError> {
    let commit = Arc::new(commit);
    let mut pause = Duration::from_millis(50);
    let mut tries = 1;
    loop {
        let (l, c) = (lease.clone(), commit.clone());
        match env.kernel.call(move |k| k.commit_quantum(&l, &c)).await {
            Ok(receipt) => return Ok(QuantumOutcome::Committed(receipt.state)),
            Err(e) if e.is_transient() && tries < EFFECT_COMMIT_TRIES && env.kernel.now() < lease.expires_at => {
                tracing::warn!("store: {e}; committing the effect's result again in {} ms", pause.as_millis());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Tries of [`commit_effect`] (with its pauses, about 8 s).
const EFFECT_COMMIT_TRIES: u32 = 7;

/// Why the image a `spawn` names could not be had.
#[derive(Debug, thiserror::Error)]
enum SpawnImageError {
    /// No such image in the catalog: the model is told.
    #[error(transparent)]
    Catalog(#[from] libos_images::ImageError),
    /// Registering it failed: the store's failure, which ends the quantum
    /// (a transient one gives it back to run again), not the model's.
    #[error(transparent)]
    Store(#[from] KernelError),
}

/// The image a `spawn` names, registered in the store so the child can be
/// spawned from its exact text.
async fn resolve_image(env: &QuantumEnv, name: &str) -> Result<SpawnImage, SpawnImageError> {
    let image = env.catalog.get(name)?;
    let (n, version, source) = (image.name.clone(), image.version.clone(), image.source.clone());
    let digest = env.kernel.call(move |k| k.register_image(&n, &version, &source)).await?;
    Ok(SpawnImage { digest, name: image.name.clone(), grants: image.grants.clone(), budget: image.budget })
}

fn tool_result(out: ToolOutput) -> ToolResultRecord {
    match out {
        ToolOutput::Ok(content) => ToolResultRecord { outcome: Outcome::Ok, content },
        ToolOutput::Error(content) => ToolResultRecord { outcome: Outcome::Error, content },
    }
}

/// What is left of a process's `wall_time` budget, if it has one.
fn wall_time_left(process: &libos_kernel::ProcessInfo, now: libos_kernel::Timestamp) -> Option<Duration> {
    let used = amounts(&process.usage, now.since(process.created_at));
    process.budget.remaining(&used, &process.held_for_children()).get(Dimension::WallTime).map(Duration::from_secs)
}
