//! The records a quantum leaves behind, and the lease it runs under.

use std::time::Duration;

use crate::audit::Outcome;
use crate::caps::{Resource, Right};
use crate::ids::{Generation, ModelCallId, Pid, SchedulerId};
use crate::ids::{MsgId, RequestId};
use crate::ipc::Message;
use crate::process::ProcessInfo;
use crate::state::FailureKind;
use crate::syscall::{Check, Syscall};
use crate::time::Timestamp;

/// A scheduler's hold on one process for one quantum. Every write made under it
/// is fenced by `generation`: once the process moves on (killed, lease expired
/// and recovered), writes under the old lease fail with `KernelError::Stale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The process.
    pub pid: Pid,
    /// Its generation right after the lease.
    pub generation: Generation,
    /// The quantum number (1-based).
    pub quantum: u64,
    /// The scheduler holding it.
    pub owner: SchedulerId,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
    /// The process as leased (its usage counts the quanta before this one),
    /// so that the quantum starts without reading it again.
    pub process: ProcessInfo,
    /// An approved call to re-dispatch, exactly as parked, with no model call.
    pub resume: Option<ApprovedCall>,
    /// Unread messages, for the prompt's inbox notice.
    pub inbox: InboxSummary,
    /// Its pinned memory objects, for the prompt.
    pub pinned: Vec<crate::memory::Object>,
}

/// A call a human approved, to run exactly as it was parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedCall {
    /// The request that approved it.
    pub request: RequestId,
    /// The quantum that made the call (its transcript entry goes there).
    pub quantum: u64,
    /// The call, with its canonical arguments.
    pub call: ToolCallRecord,
    /// Whether the call is still the one the audit chain recorded when it
    /// parked, as the lease found it.
    pub binding: Binding,
}

/// An approved call checked against the audit chain by the lease that
/// resumes it: the bytes that run are the bytes checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// It is the recorded call: run it. The approval stands in for the
    /// `ask` of exactly this need, nothing else the call touches.
    Intact {
        /// The resource the approval is for.
        resource: Resource,
        /// The right it is for.
        right: Right,
    },
    /// It is not (an edited store): never run it. `why` is for the model
    /// and the audit record; `need` is the resource and right the request
    /// says it asked for (none when the request is gone), for the check.
    Broken {
        /// Why it is not the recorded call.
        why: String,
        /// What the approval was for, as the request row says.
        need: Option<(Resource, Right)>,
    },
}

/// What the prompt says about the inbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxSummary {
    /// Unread messages.
    pub unread: u64,
    /// Unread interrupts, shown before anything else (marked read when the quantum commits).
    pub interrupts: Vec<Message>,
}

/// Token counts of one model call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
    /// True when the model reported none and these are estimates.
    pub estimated: bool,
}

/// How a model call was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelCallOutcome {
    /// Its tool call was accepted.
    Ok,
    /// Its output was rejected (bad JSON, unknown tool, bad args, not exactly one call).
    Rejected,
    /// The call itself failed (after retries).
    Error,
}

impl ModelCallOutcome {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelCallOutcome::Ok => "ok",
            ModelCallOutcome::Rejected => "rejected",
            ModelCallOutcome::Error => "error",
        }
    }
}

/// One model call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCallRecord {
    /// What it cost, micro-USD (0 when the profile has no prices).
    pub cost_micros: u64,
    /// Attempt within the quantum (0 is the first call, then repairs).
    pub attempt: u32,
    /// Model profile name.
    pub profile: String,
    /// Model name as the endpoint reported it.
    pub model: String,
    /// sha256 of the request body.
    pub request_digest: String,
    /// Size of the request body.
    pub request_bytes: u64,
    /// The response as received (JSON text of the message, or the error body).
    pub response: String,
    /// Any text the model gave with its call: the quantum's stated rationale.
    pub rationale: Option<String>,
    /// Tokens.
    pub usage: TokenUsage,
    /// Wall time of the call, retries included.
    pub latency: Duration,
    /// How it was used.
    pub outcome: ModelCallOutcome,
    /// Why it was rejected or failed.
    pub error: Option<String>,
    /// How the call was made and how the answer ended.
    pub detail: CallDetail,
}

/// How a model call was made and how its answer ended, as the client
/// reported it (all empty for models that are not HTTP endpoints).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallDetail {
    /// The call mode: `native`, `schema` or `text`.
    pub call_mode: Option<String>,
    /// Why the answer ended (`stop`, `length`, `tool_calls`, ...).
    pub finish_reason: Option<String>,
    /// The settings sent besides the conversation (JSON text).
    pub sent: Option<String>,
    /// Usage beyond input and output tokens, as reported (JSON text:
    /// `cache_read`, `cache_write`), if there was any.
    pub usage: Option<String>,
}

/// How the error of a model call attempt the client retried begins.
pub const RETRIED: &str = "retried: ";

/// How the error of an attempt whose prompt the server found too large
/// (sent again smaller) begins.
pub const SHRUNK: &str = "prompt over the model's context, sent smaller: ";

impl ModelCallRecord {
    /// Whether this is an attempt of the client (retried, or a prompt sent
    /// again smaller) rather than a call of the process: not charged,
    /// skipped by a replay, shown as a retry.
    pub fn is_attempt(&self) -> bool {
        self.outcome == ModelCallOutcome::Error
            && self.error.as_deref().is_some_and(|e| e.starts_with(RETRIED) || e.starts_with(SHRUNK))
    }
}

/// A stored model call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCallRow {
    /// Id.
    pub id: ModelCallId,
    /// The process.
    pub pid: Pid,
    /// Quantum number.
    pub quantum: u64,
    /// When it was recorded.
    pub at: Timestamp,
    /// The record.
    pub record: ModelCallRecord,
}

/// The one tool call a quantum chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallRecord {
    /// The model's id for the call (used to pair call and result in prompts).
    pub call_id: String,
    /// Tool name.
    pub tool: String,
    /// Canonical JSON arguments.
    pub args: String,
    /// The model's accompanying text.
    pub rationale: Option<String>,
    /// Provider state the model's turn carried (the Responses API's
    /// reasoning items, JSON), sent back with the call in later prompts.
    /// Opaque to the kernel and not part of the audit: it is shown to the
    /// model, never acted on.
    pub carry: Option<String>,
}

/// What a tool call returned, as the model will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResultRecord {
    /// `ok` or `error` (or `unknown` after a crash).
    pub outcome: Outcome,
    /// The text shown to the model.
    pub content: String,
}

/// What happens to the process when the quantum commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Back to runnable.
    Continue,
    /// The process called `exit`.
    Exit {
        /// Exit code.
        code: i32,
        /// The result it reported.
        result: String,
    },
    /// End it as failed.
    Fail {
        /// Category.
        kind: FailureKind,
        /// Reason.
        error: String,
    },
}

/// Everything a completed quantum commits in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantumCommit {
    /// The model call that chose the tool call (`None` when an approved call is re-dispatched).
    pub model_call: Option<ModelCallRecord>,
    /// The tool call.
    pub call: ToolCallRecord,
    /// The capability checks of the call, for its audit record.
    pub checks: Vec<Check>,
    /// What the call did, or does now in the commit.
    pub action: Action,
    /// Interrupts the prompt showed; they are marked read.
    pub seen: Vec<MsgId>,
}

/// What a committed call amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// It ran (or was denied) with this result; then the process goes on, exits or fails.
    Done {
        /// The result the model sees.
        result: ToolResultRecord,
        /// The process's next state.
        next: Next,
    },
    /// A grant said `ask`: park on an approval request for exactly this call.
    Ask {
        /// The resource that asked.
        resource: Resource,
        /// The right.
        right: Right,
        /// What the tool says of itself, shown on the request (display
        /// only: not part of what the approval binds to).
        hints: Option<crate::ipc::ToolHints>,
    },
    /// A kernel call, executed inside the commit.
    Syscall(Syscall),
}

/// An older turn as a prompt's compaction shows it: what was called and how
/// it came out, without the result's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactTurn {
    /// Quantum number.
    pub quantum: u64,
    /// The tool.
    pub tool: String,
    /// The start of its canonical arguments (at most 100 bytes).
    pub args: String,
    /// Whether the arguments were cut.
    pub args_cut: bool,
    /// How it came out.
    pub outcome: Outcome,
    /// The size of its result.
    pub result_bytes: u64,
}

/// What a quantum's prompt draws on from the transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentHistory {
    /// The newest turns in full, oldest first.
    pub full: Vec<TranscriptEntry>,
    /// The turns before those, compacted, oldest first.
    pub compact: Vec<CompactTurn>,
    /// How many turns are older still.
    pub older: u64,
}

/// One entry of a process's transcript: a tool call and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptEntry {
    /// Quantum number.
    pub quantum: u64,
    /// The call.
    pub call: ToolCallRecord,
    /// Its result.
    pub result: ToolResultRecord,
    /// Commit time.
    pub at: Timestamp,
}

/// The call a parked process is parked on, stored beside its wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedCall {
    /// The quantum that made the call (an approved call completes in it).
    pub quantum: u64,
    /// The call, with the model's rationale for it.
    pub call: ToolCallRecord,
    /// The request it waits on, when it waits on a person.
    pub request: Option<RequestId>,
    /// Approved: the next lease re-dispatches it.
    pub approved: bool,
}

/// An external effect about to start (the intent record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectIntent {
    /// The call about to have an effect outside the store.
    pub call: ToolCallRecord,
}
