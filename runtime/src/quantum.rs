//! One quantum: one model call that must choose exactly one tool call.
//!
//! 1. Read the process, its image and its recent transcript; build the request.
//! 2. Call the model (its client retries transient errors). Retries exhausted:
//!    the process goes back to runnable after a backoff, never lost. A fatal
//!    model error fails the process.
//! 3. Find exactly one tool call and parse it into a typed call. A rejection
//!    (no call, several, unknown tool, bad JSON, bad arguments) is recorded and
//!    audited, shown to the model, and the model gets a repair turn, up to
//!    `max_repairs`; then the process fails with `invalid_output`.
//! 4. Dispatch: `exit` commits as the process's end; local calls run and
//!    commit; external calls write an intent record first.
//! 5. Commit the model call, tool call, result, usage and next state at once.
//!
//! Every write after the lease is fenced by the lease's generation: if the
//! process was killed meanwhile, the write is refused and the quantum is lost
//! without effect on the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libos_kernel::{
    EffectIntent, FailureKind, Kernel, KernelError, Lease, ModelCallOutcome, ModelCallRecord, Next, Outcome, ProcState,
    QuantumCommit, QuantumEnd, TokenUsage, ToolCallRecord, ToolResultRecord,
};
use libos_tools::{Dispatch, RejectReason, ToolCall, ToolContext, ToolOutput, Workspace};
use tracing::Instrument;

use crate::config::ModelRouter;
use crate::extract;
use crate::images::ImageCache;
use crate::model::wire::request_digest;
use crate::model::{ChatMessage, ChatResponse, ModelError};
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
pub struct QuantumEnv {
    /// The kernel.
    pub kernel: Kernel,
    /// Models by profile.
    pub models: ModelRouter,
    /// Parsed images.
    pub images: ImageCache,
    /// Tunables.
    pub policy: QuantumPolicy,
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
    let result = run_inner(&env, &lease).instrument(span).await;
    match result {
        Err(KernelError::Stale { .. }) => Ok(QuantumOutcome::Lost),
        other => other,
    }
}

fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

async fn run_inner(env: &QuantumEnv, lease: &Lease) -> Result<QuantumOutcome, KernelError> {
    let kernel = &env.kernel;
    let fail = |kind, error: String| {
        kernel.end_quantum(lease, None, QuantumEnd::Fail { kind, error }).map(|r| QuantumOutcome::Committed(r.state))
    };
    let process = &lease.process;
    let image = match env.images.get(kernel, &process.image_digest) {
        Ok(i) => i,
        Err(e) => return fail(FailureKind::KernelError, e),
    };
    let model = match env.models.get(&image.model) {
        Ok(m) => m,
        Err(e) => return fail(FailureKind::ModelError, e),
    };
    let workspace = match Workspace::new(&process.workspace, kernel.protected_paths().to_vec()) {
        Ok(w) => w,
        Err(e) => return fail(FailureKind::KernelError, e),
    };
    let (recent, total) = kernel.transcript(lease.pid, Some(image.context.transcript_window as usize))?;
    let omitted = total.saturating_sub(recent.len() as u64);
    let mut request = prompt::build(&image, process, &recent, omitted, process.usage.model_calls, lease.quantum);
    let fallback_id = format!("call_{}_{}", lease.pid, lease.quantum);

    let mut last_reason = String::new();
    for attempt in 0..=env.policy.max_repairs {
        request.meta.call_index = process.usage.model_calls + u64::from(attempt);
        let (digest, bytes) = request_digest(&request);
        let started = Instant::now();
        let answer = model.complete(&request).await;
        let latency = started.elapsed();
        let record = |response: String, content: Option<String>, model_name: String, usage| ModelCallRecord {
            attempt,
            profile: model.profile().to_string(),
            model: model_name,
            request_digest: digest.clone(),
            request_bytes: bytes,
            response,
            rationale: content,
            usage,
            latency,
            outcome: ModelCallOutcome::Ok,
            error: None,
        };
        let resp = match answer {
            Ok(r) => r,
            Err(e) => {
                let mut m = record(e.to_string(), None, String::new(), TokenUsage::default());
                m.outcome = ModelCallOutcome::Error;
                m.error = Some(e.to_string());
                let end = match &e {
                    ModelError::Transient { retry_after, .. } => {
                        QuantumEnd::Backoff(retry_after.unwrap_or_default().max(env.policy.backoff))
                    }
                    ModelError::Fatal(msg) => QuantumEnd::Fail { kind: FailureKind::ModelError, error: msg.clone() },
                };
                tracing::warn!("model call failed: {e}");
                let r = kernel.end_quantum(lease, Some(&m), end)?;
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
        let mut m = record(resp.raw.clone(), resp.content.clone(), resp.model.clone(), usage);
        let parsed = extract::one_call(&resp, &image.tools, &fallback_id).and_then(|found| {
            ToolCall::parse(&found.call.name, &found.call.arguments, &image.tools).map(|call| (found, call))
        });
        let (found, call) = match parsed {
            Ok(ok) => ok,
            Err(reason) => {
                let text = reason.to_string();
                m.outcome = ModelCallOutcome::Rejected;
                m.error = Some(text.clone());
                let (tool, raw) = offending(&resp);
                kernel.record_rejection(lease, &m, tool.as_deref(), raw.as_deref(), &text)?;
                tracing::info!(attempt, "model output rejected: {text}");
                push_repair(&mut request.messages, &resp, &reason);
                last_reason = text;
                continue;
            }
        };
        m.rationale = found.rationale.clone();
        let call_rec = ToolCallRecord {
            call_id: found.call.id.clone(),
            tool: call.name().as_str().to_string(),
            args: call.canonical_args(),
            rationale: found.rationale.clone(),
        };
        let ctx = ToolContext { workspace: workspace.clone(), now: libos_kernel::Timestamp::now() };
        let (result, next) = match call.dispatch() {
            Dispatch::Exit { result } => (
                ToolResultRecord { outcome: Outcome::Ok, content: "process exited".to_string() },
                Next::Exit { code: 0, result },
            ),
            Dispatch::Local => (tool_result(call.run(&ctx)), Next::Continue),
            Dispatch::External => {
                kernel.begin_effect(lease, &EffectIntent { call: call_rec.clone() })?;
                (tool_result(call.run(&ctx)), Next::Continue)
            }
        };
        let commit = QuantumCommit { model_call: m, call: call_rec, result, decision: Some("allow".to_string()), next };
        let receipt = kernel.commit_quantum(lease, &commit)?;
        return Ok(QuantumOutcome::Committed(receipt.state));
    }
    fail(
        FailureKind::InvalidOutput,
        format!("model output was rejected {} times in a row; last: {last_reason}", env.policy.max_repairs + 1),
    )
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
fn push_repair(messages: &mut Vec<ChatMessage>, resp: &ChatResponse, reason: &RejectReason) {
    let note = format!("error: {reason}. Reply again with exactly one valid tool call.");
    if resp.tool_calls.is_empty() {
        messages.push(ChatMessage::Assistant { content: resp.content.clone(), tool_calls: Vec::new() });
        messages.push(ChatMessage::User(note));
    } else {
        messages.push(ChatMessage::Assistant { content: resp.content.clone(), tool_calls: resp.tool_calls.clone() });
        for call in &resp.tool_calls {
            messages.push(ChatMessage::Tool { call_id: call.id.clone(), content: note.clone() });
        }
    }
}

/// For callers holding a model directly (the embedded API).
pub fn env(kernel: Kernel, models: ModelRouter, policy: QuantumPolicy) -> Arc<QuantumEnv> {
    Arc::new(QuantumEnv { kernel, models, images: ImageCache::default(), policy })
}
