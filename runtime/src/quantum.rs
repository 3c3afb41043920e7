//! One quantum: one model call that must choose exactly one tool call.
//!
//! 1. If the lease carries an approved call, re-dispatch exactly that call
//!    (no model call), from step 4 with the approval standing in for the
//!    `ask` of the one resource and right it was for. If the lease found
//!    the stored call differing from the audit chain, it is not run: the
//!    model hears why, and that is the call's audit record.
//! 2. Otherwise read the image and recent transcript; build the request
//!    (inbox notice and unread interrupts included) and call the model (its
//!    client retries transient errors). Retries exhausted: the process goes
//!    back to runnable after a backoff, never lost. A fatal model error
//!    fails the process.
//! 3. Find exactly one tool call and parse it into a typed call. A rejection
//!    (no call, several, unknown tool, bad JSON, bad arguments) is recorded and
//!    audited, shown to the model, and the model gets a repair turn, up to
//!    `max_repairs`; then the process fails with `invalid_output`.
//! 4. Check capabilities for every (resource, right) the call touches:
//!    `deny` becomes the tool result; `ask` parks the process on an approval
//!    request for exactly this call; `allow` dispatches.
//! 5. Dispatch: `exit` commits as the process's end; local calls run and
//!    commit; external calls (a dynamic tool's among them, run by its
//!    handler) write an intent record first; kernel calls (messages,
//!    children, timers) execute inside the commit.
//! 6. Commit the model call, tool call, checks, result, usage and next state at once.
//!
//! Every write after the lease is fenced by the lease's generation: if the
//! process was killed meanwhile, the write is refused and the quantum is lost
//! without effect on the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libos_images::{Image, ImageSet};
use libos_kernel::budget::{Dimension, amounts};
use libos_kernel::caps::{Basis, Decision, Effect, Resource, Right};
use libos_kernel::syscall::{Check, Need, SpawnImage, Syscall};
use libos_kernel::{
    Action, ApprovedCall, AsyncKernel, Authorization, Binding, CallDetail, EffectIntent, FailureKind, Kernel,
    KernelError, Lease, ModelCallOutcome, ModelCallRecord, Next, Outcome, ProcState, QuantumCommit, QuantumEnd,
    TokenUsage, ToolCallRecord, ToolResultRecord,
};
use libos_sandbox::{Cancel, CancelOnDrop, Limits, NetGate, Sandbox};
use libos_tools::{
    Caller, Dispatch, Invocation, OperatorHeaders, Refusal, Registry, ToolCall, ToolContext, ToolHandler, ToolOutput,
    ToolSet, Workspace,
};
use tracing::Instrument;

use crate::config::ModelRouter;
use crate::extract;
use crate::images::{ImageCache, ImageLoadError};
use crate::model::wire::request_digest;
use crate::model::{CallInfo, ChatMessage, ChatResponse, ModelError, Window};
use crate::netgate::GrantGate;
use crate::prompt;

/// Tunables of the quantum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantumPolicy {
    /// Repair turns after a rejected output before the process fails.
    pub max_repairs: u32,
    /// Backoff after a model's retries ran out.
    pub backoff: Duration,
}

impl Default for QuantumPolicy {
    fn default() -> Self {
        QuantumPolicy { max_repairs: 2, backoff: Duration::from_secs(30) }
    }
}

/// What a quantum needs, shared by all of them.
#[derive(Clone)]
pub struct QuantumEnv {
    /// The kernel, as async code holds it: every store call is awaited
    /// off the async workers ([`AsyncKernel::call`]).
    pub kernel: AsyncKernel,
    /// Models by profile.
    pub models: ModelRouter,
    /// Parsed images of running processes, by digest.
    pub images: ImageCache,
    /// The images processes may spawn, by name (registered on first use).
    pub catalog: ImageSet,
    /// Tunables.
    pub policy: QuantumPolicy,
    /// Where programs (`shell`) run.
    pub sandbox: Sandbox,
    /// The operator's headers `http_request` adds, by host (`[http.HOST]`).
    pub http: Arc<OperatorHeaders>,
    /// Answers built-in calls that reach beyond this machine
    /// (`ToolCall::is_open_world`) instead of running them: a replay's record.
    pub recorded: Option<Arc<dyn ToolHandler>>,
}

/// How a quantum ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantumOutcome {
    /// Committed; the process is now in this state.
    Committed(ProcState),
    /// The lease was lost (killed meanwhile): nothing was committed.
    Lost,
}

/// Runs one leased quantum to its commit.
pub async fn run(env: Arc<QuantumEnv>, lease: Lease) -> Result<QuantumOutcome, KernelError> {
    let span = tracing::info_span!("quantum", pid = lease.pid.get(), quantum = lease.quantum);
    let lease = Arc::new(lease);
    let result = run_inner(&env, &lease).instrument(span).await;
    match result {
        Err(KernelError::Stale { .. }) => Ok(QuantumOutcome::Lost),
        other => other,
    }
}

fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// Ends the quantum with the process failed.
async fn fail(
    env: &QuantumEnv,
    lease: &Arc<Lease>,
    kind: FailureKind,
    error: String,
) -> Result<QuantumOutcome, KernelError> {
    let lease = lease.clone();
    let end = QuantumEnd::Fail { kind, error };
    env.kernel.call(move |k| k.end_quantum(&lease, None, end)).await.map(|r| QuantumOutcome::Committed(r.state))
}

async fn run_inner(env: &Arc<QuantumEnv>, lease: &Arc<Lease>) -> Result<QuantumOutcome, KernelError> {
    let kernel = &env.kernel;
    let process = &lease.process;
    let image = match env.images.cached(&process.image_digest) {
        Some(image) => Ok(image),
        None => {
            let (e, digest) = (env.clone(), process.image_digest.clone());
            kernel.call(move |k| e.images.get(k, &digest)).await
        }
    };
    let image = match image {
        Ok(i) => i,
        // A store that failed for now fails the quantum, not the process.
        Err(ImageLoadError::Store(e)) if e.is_transient() => return Err(e),
        Err(e) => return fail(env, lease, FailureKind::KernelError, e.to_string()).await,
    };
    let workspace = match env.images.workspace(&process.workspace, kernel.protected_paths()) {
        Ok(w) => w,
        Err(e) => return fail(env, lease, FailureKind::KernelError, e).await,
    };
    let tools = match env.images.tools(&image) {
        Ok(t) => t,
        Err(e) => return fail(env, lease, FailureKind::KernelError, e.to_string()).await,
    };
    if let Some(approved) = &lease.resume {
        return resume_approved(env, lease, &image, &tools.set, &workspace, approved).await;
    }
    let model = match env.models.get(&image.model) {
        Ok(m) => m,
        Err(e) => return fail(env, lease, FailureKind::ModelError, e).await,
    };
    // The image's profile for repair turns, if it names one.
    let repairer = match image.repair_model.as_deref().map(|p| env.models.get(p)) {
        None => model.clone(),
        Some(Ok(m)) => m,
        Some(Err(e)) => return fail(env, lease, FailureKind::ModelError, format!("repair_model: {e}")).await,
    };
    let window = image.context.transcript_window as usize;
    let pid = lease.pid;
    let recall = usize::from(image.context.recall);
    // Only an image that recalls pays for the copy and the search.
    let searcher = (recall > 0).then(|| process.clone());
    // One hop for the history and what the image recalls from memory.
    let (history, recalled) = kernel
        .call(move |k| -> Result<_, KernelError> {
            let history = k.recent_history(pid, window, prompt::COMPACT_LINES)?;
            let mut recalled = Vec::new();
            if let Some(query) = searcher.as_ref().and_then(|p| prompt::recall_query(p, &history)) {
                for hit in k.memory_search(pid, &query, None, recall)? {
                    let object = k.memory_object(hit.oid)?;
                    recalled.push(prompt::Recalled { score: hit.score, object });
                }
            }
            Ok((history, recalled))
        })
        .await?;
    let win = model.window().await;
    let mut budget = fit_budget(u64::from(image.context.token_budget), &win, &tools.table);
    let build = |budget: u64| {
        prompt::build(
            &image,
            process,
            &history,
            &lease.pinned,
            &recalled,
            tools.table.clone(),
            &lease.inbox,
            process.usage.model_calls,
            lease.quantum,
            budget,
        )
    };
    let mut request = build(budget);
    let seen: Vec<_> = lease.inbox.interrupts.iter().map(|m| m.id).collect();
    let fallback_id = format!("call_{}_{}", lease.pid, lease.quantum);

    let used = amounts(&process.usage, env.kernel.now().since(process.created_at));
    let tokens_in_left = process.budget.remaining(&used, &process.held_for_children()).get(Dimension::TokensIn);
    let mut spent_in = 0u64;
    let mut last_reason = String::new();
    let mut attempt = 0u32;
    let mut repairs = 0u32;
    let mut shrinks = 0u32;
    while repairs <= env.policy.max_repairs {
        request.meta.call_index = process.usage.model_calls + u64::from(attempt);
        let (digest, bytes) = request_digest(&request);
        // Reserve the prompt's input tokens before the call: a call the
        // budget cannot pay for is never made.
        if let Some(left) = tokens_in_left.map(|l| l.saturating_sub(spent_in)) {
            let need = estimate_tokens(bytes as usize);
            if need > left {
                return fail(
                    env,
                    lease,
                    FailureKind::BudgetExhausted,
                    format!("tokens_in budget exhausted: the next prompt needs ~{need} tokens, {left} are left"),
                )
                .await;
            }
        }
        let started = Instant::now();
        let asked = if repairs > 0 { &repairer } else { &model };
        // The profile name the image asked for (prices are by profile name;
        // an embedding program's override model may call itself anything).
        let asked_name = match image.repair_model.as_deref() {
            Some(p) if repairs > 0 => p,
            _ => image.model.as_str(),
        };
        let answer = asked.complete(&request).await;
        let latency = started.elapsed();
        let record =
            |response: String, content: Option<String>, model_name: String, usage: TokenUsage, info: &CallInfo| {
                // The profile that answered (a route may have handed the call on).
                let price = env.models.price(info.profile.as_deref().unwrap_or(asked_name));
                let profile = info.profile.clone().unwrap_or_else(|| asked.profile().to_string());
                ModelCallRecord {
                    cost_micros: price.map_or(0, |p| p.cost_micros(usage.input, usage.output)),
                    attempt,
                    profile,
                    model: model_name,
                    request_digest: digest.clone(),
                    request_bytes: bytes,
                    response,
                    rationale: content,
                    usage,
                    latency,
                    outcome: ModelCallOutcome::Ok,
                    error: None,
                    detail: CallDetail {
                        call_mode: info.mode.map(|m| m.as_str().to_string()),
                        finish_reason: info.finish_reason.clone(),
                        sent: info.sent.clone(),
                        usage: None,
                    },
                }
            };
        // Attempts the client retried are part of the transcript too.
        let retried = |info: &CallInfo| -> Vec<ModelCallRecord> {
            info.retried
                .iter()
                .map(|why| {
                    let mut m = record(String::new(), None, String::new(), TokenUsage::default(), info);
                    m.profile = why.profile.clone();
                    m.cost_micros = 0;
                    m.outcome = ModelCallOutcome::Error;
                    m.error = Some(format!("{RETRIED}{}", why.error));
                    m.detail.finish_reason = None;
                    m
                })
                .collect()
        };
        let resp = match answer {
            Ok(r) => {
                record_attempts(env, lease, retried(&r.info)).await?;
                r
            }
            Err(ModelError::ContextOverflow { message, limit, info })
                if shrinks < MAX_SHRINKS && budget > MIN_BUDGET =>
            {
                // Not a failure: the next attempt sends a smaller, more compacted prompt.
                let mut attempts = retried(&info);
                let mut m = record(message.clone(), None, String::new(), TokenUsage::default(), &info);
                m.outcome = ModelCallOutcome::Error;
                m.error = Some(format!("{SHRUNK}{message}"));
                attempts.push(m);
                record_attempts(env, lease, attempts).await?;
                let refit =
                    limit.map_or(budget, |l| fit_budget(budget, &Window { context: Some(l), ..win }, &tools.table));
                budget = refit.min(budget / 2).max(MIN_BUDGET);
                tracing::info!(budget, "the prompt overflowed the model's context; shrinking it");
                request = build(budget);
                shrinks += 1;
                continue;
            }
            Err(e) => {
                let (attempts, info) = match &e {
                    ModelError::Transient { info, .. } | ModelError::ContextOverflow { info, .. } => {
                        (retried(info), (**info).clone())
                    }
                    ModelError::Fatal(_) => (Vec::new(), CallInfo::default()),
                };
                let error = e.to_string();
                let mut m = record(error.clone(), None, String::new(), TokenUsage::default(), &info);
                m.outcome = ModelCallOutcome::Error;
                m.error = Some(error.clone());
                // A transient failure backs off, unless the same one ended
                // too many quanta in a row (counted from the record); a
                // fatal one ends the process.
                let end = match &e {
                    ModelError::Transient { retry_after, .. } => {
                        Err(retry_after.unwrap_or_default().max(env.policy.backoff))
                    }
                    ModelError::ContextOverflow { .. } => Err(env.policy.backoff),
                    ModelError::Fatal(msg) => {
                        Ok(QuantumEnd::Fail { kind: FailureKind::ModelError, error: msg.clone() })
                    }
                };
                tracing::warn!("model call failed: {}", libos_kernel::text::escape_line(&error));
                let (lease, max_failures) = (lease.clone(), win.max_failures);
                let r = kernel
                    .call(move |k| {
                        for a in &attempts {
                            k.record_attempt(&lease, a)?;
                        }
                        let end = match end {
                            Ok(end) => end,
                            Err(backoff) => {
                                let streak = failure_streak(k, &lease, &error)? + 1;
                                if streak >= max_failures {
                                    QuantumEnd::Fail {
                                        kind: FailureKind::ModelError,
                                        error: format!(
                                            "{streak} quanta in a row failed on the same model error; last: {error}"
                                        ),
                                    }
                                } else {
                                    QuantumEnd::Backoff(backoff)
                                }
                            }
                        };
                        k.end_quantum(&lease, Some(&m), end)
                    })
                    .await?;
                return Ok(QuantumOutcome::Committed(r.state));
            }
        };
        let usage = match resp.usage {
            Some(u) => TokenUsage { input: u.input, output: u.output, estimated: false },
            None => TokenUsage {
                input: estimate_tokens(bytes as usize),
                output: estimate_tokens(resp.raw.len()),
                estimated: true,
            },
        };
        spent_in += usage.input;
        let mut m = record(resp.raw.clone(), resp.content.clone(), resp.model.clone(), usage, &resp.info);
        m.detail.usage = resp
            .usage
            .filter(|u| u.cache_read + u.cache_write > 0)
            .map(|u| serde_json::json!({"cache_read": u.cache_read, "cache_write": u.cache_write}).to_string());
        let parsed = extract::one_call(&resp, tools.set.names(), &fallback_id).and_then(|found| {
            ToolCall::parse(&found.call.name, &found.call.arguments, &tools.set).map(|call| (found, call))
        });
        let (found, call) = match parsed {
            Ok(ok) => ok,
            Err(reason) => {
                let cut_off = crate::model::settings::cut_off(resp.info.finish_reason.as_deref());
                let text = if cut_off {
                    format!("the answer was cut off at max_tokens ({}) before it was complete; {reason}", win.output)
                } else {
                    reason.to_string()
                };
                m.outcome = ModelCallOutcome::Rejected;
                m.error = Some(text.clone());
                let (tool, raw) = offending(&resp);
                let (l, rejected, reason) = (lease.clone(), m.clone(), text.clone());
                kernel
                    .call(move |k| k.record_rejection(&l, &rejected, tool.as_deref(), raw.as_deref(), &reason))
                    .await?;
                tracing::info!(attempt, "model output rejected: {}", libos_kernel::text::escape_line(&text));
                push_repair(&mut request.messages, &resp, &text);
                last_reason = text;
                attempt += 1;
                repairs += 1;
                continue;
            }
        };
        m.rationale = found.rationale.clone();
        let call_rec = ToolCallRecord {
            call_id: found.call.id.clone(),
            tool: call.name().to_string(),
            args: call.canonical_args(),
            rationale: found.rationale.clone(),
            // Provider state past this size is not kept: it would crowd the
            // prompt it is sent back in (the newest turn is always shown whole).
            carry: resp.carry.clone().filter(|c| c.len() <= MAX_CARRY),
        };
        return dispatch(env, lease, &workspace, image.limits, Some(m), call_rec, &call, seen, None).await;
    }
    fail(
        env,
        lease,
        FailureKind::InvalidOutput,
        format!("model output was rejected {} times in a row; last: {last_reason}", env.policy.max_repairs + 1),
    )
    .await
}

/// Records the attempts a model client retried (none, mostly: no hop then).
async fn record_attempts(
    env: &QuantumEnv,
    lease: &Arc<Lease>,
    attempts: Vec<ModelCallRecord>,
) -> Result<(), KernelError> {
    if attempts.is_empty() {
        return Ok(());
    }
    let lease = lease.clone();
    env.kernel.call(move |k| attempts.iter().try_for_each(|m| k.record_attempt(&lease, m))).await
}

use libos_kernel::quantum::{RETRIED, SHRUNK};

/// Whether a recorded model call is an attempt of the client (retried, or
/// a prompt sent again smaller) rather than a call of the process: such
/// rows are not charged, and a replay skips them.
pub fn is_attempt(m: &ModelCallRecord) -> bool {
    m.is_attempt()
}

/// The most bytes of provider state ([`ChatResponse::carry`]) kept with a call.
const MAX_CARRY: usize = 64 * 1024;

/// Times a quantum sends a smaller prompt after a context overflow.
const MAX_SHRINKS: u32 = 3;

/// The smallest prompt budget a shrink goes down to.
const MIN_BUDGET: u64 = 256;

/// The prompt's token budget: the image's, or what the model's context
/// leaves after the answer's reservation, the tools' definitions and a
/// margin for the chat template, counted in estimated tokens (the server's
/// reported prompt tokens calibrate the estimate).
fn fit_budget(image_budget: u64, win: &Window, table: &crate::model::ToolTable) -> u64 {
    let Some(context) = win.context else { return image_budget };
    let margin = context / 16 + 32;
    let room = context.saturating_sub(win.output).saturating_sub(margin);
    let ratio = if win.ratio.is_finite() && win.ratio > 0.0 { win.ratio } else { 1.0 };
    let room = (room as f64 / ratio) as u64;
    let tools = estimate_tokens(table.json().len().max(table.described().len()));
    image_budget.min(room.saturating_sub(tools)).max(MIN_BUDGET.min(image_budget))
}

/// How many of the process's latest quanta before this one ended on this
/// same model error (retry counts aside), none in between succeeding.
fn failure_streak(kernel: &Kernel, lease: &Lease, error: &str) -> Result<u32, KernelError> {
    let key = |e: &str| e.split(" (attempts: ").next().unwrap_or(e).to_string();
    let error = key(error);
    let calls = kernel.model_calls(lease.pid)?;
    let mut last: std::collections::BTreeMap<u64, &libos_kernel::ModelCallRow> = std::collections::BTreeMap::new();
    for c in calls.iter().filter(|c| c.quantum < lease.quantum) {
        last.insert(c.quantum, c);
    }
    let mut streak = 0;
    for c in last.values().rev() {
        let same =
            c.record.outcome == ModelCallOutcome::Error && c.record.error.as_deref().map(key) == Some(error.clone());
        if !same {
            break;
        }
        streak += 1;
    }
    Ok(streak)
}

/// Re-dispatches a call a human approved, exactly as it was parked and as
/// the lease found it in the audit chain; a call that is not what the chain
/// holds never runs.
async fn resume_approved(
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
async fn dispatch(
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

/// The tool name and raw arguments of a rejected answer, for the audit record.
fn offending(resp: &ChatResponse) -> (Option<String>, Option<String>) {
    match resp.tool_calls.as_slice() {
        [one] => (Some(one.name.clone()), Some(one.arguments.clone())),
        [] => (None, resp.content.clone()),
        many => (Some(many.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(",")), None),
    }
}

/// Appends the rejected answer and the error to the conversation, so the
/// model sees what it said and why it was refused.
fn push_repair(messages: &mut Vec<ChatMessage>, resp: &ChatResponse, reason: &str) {
    let note = format!("error: {reason}. Reply again with exactly one valid tool call.");
    if resp.tool_calls.is_empty() {
        messages.push(ChatMessage::Assistant {
            content: resp.content.clone(),
            tool_calls: Vec::new(),
            carry: resp.carry.clone(),
        });
        messages.push(ChatMessage::User(note));
    } else {
        messages.push(ChatMessage::Assistant {
            content: resp.content.clone(),
            tool_calls: resp.tool_calls.clone(),
            carry: resp.carry.clone(),
        });
        for call in &resp.tool_calls {
            messages.push(ChatMessage::Tool { call_id: call.id.clone(), content: note.clone() });
        }
    }
}

/// What is left of a process's `wall_time` budget, if it has one.
fn wall_time_left(process: &libos_kernel::ProcessInfo, now: libos_kernel::Timestamp) -> Option<Duration> {
    let used = amounts(&process.usage, now.since(process.created_at));
    process.budget.remaining(&used, &process.held_for_children()).get(Dimension::WallTime).map(Duration::from_secs)
}

/// For callers holding a model directly (the embedded API). Processes may
/// spawn the shipped images; [`env_with_catalog`] sets another catalog.
/// Programs run in [`default_sandbox`].
pub fn env(kernel: Kernel, models: ModelRouter, policy: QuantumPolicy) -> Arc<QuantumEnv> {
    env_with_catalog(kernel, models, policy, ImageSet::shipped().unwrap_or_default())
}

/// Like [`env()`], with the images processes may spawn.
pub fn env_with_catalog(
    kernel: Kernel,
    models: ModelRouter,
    policy: QuantumPolicy,
    catalog: ImageSet,
) -> Arc<QuantumEnv> {
    env_with_sandbox(kernel, models, policy, catalog, default_sandbox())
}

/// Like [`env_with_catalog`], with the sandbox programs run in.
pub fn env_with_sandbox(
    kernel: Kernel,
    models: ModelRouter,
    policy: QuantumPolicy,
    catalog: ImageSet,
    sandbox: Sandbox,
) -> Arc<QuantumEnv> {
    env_with_registry(kernel, models, policy, catalog, sandbox, Registry::builtin().clone())
}

/// Like [`env_with_sandbox`], with the tools processes may have: the
/// built-ins and the dynamic tools registered at start (from the
/// configuration, MCP servers, ...). Images naming a tool `registry` does
/// not know fail to load, naming it.
pub fn env_with_registry(
    kernel: Kernel,
    models: ModelRouter,
    policy: QuantumPolicy,
    catalog: ImageSet,
    sandbox: Sandbox,
    registry: Registry,
) -> Arc<QuantumEnv> {
    // The launcher is part of libos: an agent that replaced it would run
    // every later program unconfined.
    if let Some(launcher) = sandbox.launcher() {
        kernel.protect(launcher);
    }
    Arc::new(QuantumEnv {
        kernel: AsyncKernel::new(kernel),
        models,
        images: ImageCache::new(registry),
        catalog,
        policy,
        sandbox,
        http: Arc::new(OperatorHeaders::default()),
        recorded: None,
    })
}

/// `env` with the operator's headers for `http_request` (`[http.HOST]` in
/// `libos.toml`); without them, requests carry only the model's headers.
/// Meant for a run's start: an `env` already shared is copied, not changed.
pub fn with_http(env: Arc<QuantumEnv>, http: OperatorHeaders) -> Arc<QuantumEnv> {
    let mut env = Arc::unwrap_or_clone(env);
    env.http = Arc::new(http);
    Arc::new(env)
}

/// `env` answering open-world built-in calls (`http_request`) with
/// `recorded` rather than sending them: what a replay runs with.
pub fn with_recorded(env: Arc<QuantumEnv>, recorded: Arc<dyn ToolHandler>) -> Arc<QuantumEnv> {
    let mut env = Arc::unwrap_or_clone(env);
    env.recorded = Some(recorded);
    Arc::new(env)
}

/// The sandbox this host offers, found and probed once per program
/// ([`Sandbox::detect`]): the `libos-sandbox` launcher beside the program or
/// on `PATH`. Where there is none, or the host cannot confine programs,
/// programs are refused with the reason, never run unconfined.
pub fn default_sandbox() -> Sandbox {
    static DETECTED: std::sync::OnceLock<Sandbox> = std::sync::OnceLock::new();
    DETECTED.get_or_init(Sandbox::detect).clone()
}
