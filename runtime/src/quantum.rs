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

use libos_images::ImageSet;
use libos_kernel::budget::{Dimension, amounts};
use libos_kernel::{
    AsyncKernel, CallDetail, FailureKind, Kernel, KernelError, Lease, ModelCallOutcome, ModelCallRecord, ProcState,
    QuantumEnd, TokenUsage, ToolCallRecord,
};
use libos_sandbox::Sandbox;
use libos_tools::{OperatorHeaders, Registry, ToolCall, ToolHandler};
use tracing::Instrument;

use crate::config::ModelRouter;
use crate::extract;
use crate::images::{ImageCache, ImageLoadError};
use crate::model::wire::request_digest;
use crate::model::{CallInfo, ChatMessage, ChatResponse, ModelError, Window};
use crate::prompt;

mod dispatch;

use dispatch::{dispatch, resume_approved};

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
