//! Process states and the one transition function.
//!
//! Every change of a process's state goes through [`transition`], which matches
//! (state, event) exhaustively and returns the next state together with the
//! audit record the change produces. The store commits both, plus the
//! generation bump that fences stale writers, in one transaction.

use std::fmt;

use serde_json::json;

use crate::actor::Actor;
use crate::audit::{AuditDraft, AuditKind, KernelAction, Outcome};
use crate::ids::{Pid, RequestId, SchedulerId};
use crate::ipc::MessageFilter;
use crate::time::Timestamp;

/// A scheduler's claim on a process for one quantum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The scheduler holding the lease.
    pub owner: SchedulerId,
    /// When the lease lapses unless renewed; another scheduler may then recover it.
    pub expires_at: Timestamp,
    /// The process's quantum number (1-based) this lease runs.
    pub quantum: u64,
}

/// Why a process failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The model kept producing output that is not exactly one valid tool call.
    InvalidOutput,
    /// The model endpoint returned a non-retryable error.
    ModelError,
    /// A budget dimension ran out.
    BudgetExhausted,
    /// The kernel could not carry out the quantum (image missing, store trouble).
    KernelError,
}

impl FailureKind {
    /// Stable snake_case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::InvalidOutput => "invalid_output",
            FailureKind::ModelError => "model_error",
            FailureKind::BudgetExhausted => "budget_exhausted",
            FailureKind::KernelError => "kernel_error",
        }
    }

    /// Inverse of [`FailureKind::as_str`].
    pub fn parse(s: &str) -> Option<FailureKind> {
        Some(match s {
            "invalid_output" => FailureKind::InvalidOutput,
            "model_error" => FailureKind::ModelError,
            "budget_exhausted" => FailureKind::BudgetExhausted,
            "kernel_error" => FailureKind::KernelError,
            _ => return None,
        })
    }
}

/// What a parked process waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOn {
    /// A human's decision on an approval request, or an answer to a question.
    Human(RequestId),
    /// One own child (or, with `None`, any) to end.
    Child(Option<Pid>),
    /// A message matching the filter (any unread interrupt also wakes it).
    Message(MessageFilter),
    /// A deadline (an interrupt also wakes it).
    Timer(Timestamp),
}

impl fmt::Display for WaitOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitOn::Human(id) => write!(f, "human: request {id}"),
            WaitOn::Child(Some(pid)) => write!(f, "child: {pid}"),
            WaitOn::Child(None) => f.write_str("child: any"),
            WaitOn::Message(filter) => write!(f, "message: {filter}"),
            WaitOn::Timer(t) => write!(f, "timer: {t}"),
        }
    }
}

/// The state of a process. Variants carry exactly the data that means something in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcState {
    /// Waiting for a quantum; `not_before` delays it after a model backoff.
    Runnable {
        /// Earliest time the scheduler may lease it again.
        not_before: Option<Timestamp>,
    },
    /// A quantum is in flight under this lease.
    Running {
        /// The lease of the in-flight quantum.
        lease: LeaseInfo,
    },
    /// Parked: costs a row until its wake condition happens.
    Waiting {
        /// What it waits for.
        on: WaitOn,
    },
    /// Stopped by an operator or its parent; `resume` returns it to exactly `was`.
    Paused {
        /// The state it was paused in (runnable or waiting).
        was: Box<ProcState>,
    },
    /// Ended by calling `exit`.
    Exited {
        /// Exit code (0 for a normal `exit`).
        code: i32,
        /// The result the process reported.
        result: String,
    },
    /// Ended by the kernel because it could not go on.
    Failed {
        /// The category of the failure.
        kind: FailureKind,
        /// One line saying what went wrong.
        error: String,
    },
    /// Ended by an operator (or later, a parent).
    Killed {
        /// Who killed it.
        by: Actor,
        /// Why, as given.
        reason: String,
    },
}

impl ProcState {
    /// The state's name: `runnable`, `running`, `exited`, `failed`, `killed`.
    pub fn name(&self) -> &'static str {
        match self {
            ProcState::Runnable { .. } => "runnable",
            ProcState::Running { .. } => "running",
            ProcState::Waiting { .. } => "waiting",
            ProcState::Paused { .. } => "paused",
            ProcState::Exited { .. } => "exited",
            ProcState::Failed { .. } => "failed",
            ProcState::Killed { .. } => "killed",
        }
    }

    /// True for exited, failed and killed: no event leaves these.
    pub fn is_terminal(&self) -> bool {
        match self {
            ProcState::Runnable { .. }
            | ProcState::Running { .. }
            | ProcState::Waiting { .. }
            | ProcState::Paused { .. } => false,
            ProcState::Exited { .. } | ProcState::Failed { .. } | ProcState::Killed { .. } => true,
        }
    }
}

impl fmt::Display for ProcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcState::Runnable { not_before: None } => f.write_str("runnable"),
            ProcState::Runnable { not_before: Some(t) } => write!(f, "runnable (backoff until {t})"),
            ProcState::Running { lease } => write!(f, "running (quantum {})", lease.quantum),
            ProcState::Waiting { on } => write!(f, "waiting ({on})"),
            ProcState::Paused { was } => write!(f, "paused (was {was})"),
            ProcState::Exited { code, .. } => write!(f, "exited({code})"),
            ProcState::Failed { kind, .. } => write!(f, "failed({})", kind.as_str()),
            ProcState::Killed { by, .. } => write!(f, "killed(by {by})"),
        }
    }
}

/// Something that happens to a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A scheduler leases it for a quantum.
    Lease(LeaseInfo),
    /// The quantum ended and the process goes on (optionally after a backoff).
    Yield {
        /// Delay before the next quantum (set after a model backoff).
        not_before: Option<Timestamp>,
    },
    /// The quantum parked the process.
    Park(WaitOn),
    /// The wait is over (decided, answered, a child ended, a message came, the timer fired).
    Wake,
    /// An operator or the parent pauses it.
    Pause {
        /// Who.
        by: Actor,
    },
    /// It goes back to the state it was paused in.
    Resume {
        /// Who.
        by: Actor,
    },
    /// The lease lapsed without a commit (scheduler crashed or hung).
    LeaseExpired,
    /// The scheduler gave the lease back without running the quantum to its end (shutdown).
    Release,
    /// The process called `exit`.
    Exit {
        /// Exit code.
        code: i32,
        /// The process's result.
        result: String,
    },
    /// The kernel ends the process.
    Fail {
        /// Category.
        kind: FailureKind,
        /// One-line reason.
        error: String,
    },
    /// An operator kills the process.
    Kill {
        /// Who.
        by: Actor,
        /// Why.
        reason: String,
    },
}

impl Event {
    fn action(&self) -> KernelAction {
        match self {
            Event::Lease(_) => KernelAction::Lease,
            Event::Yield { .. } => KernelAction::Yield,
            Event::Park(_) => KernelAction::Park,
            Event::Wake => KernelAction::Wake,
            Event::Pause { .. } => KernelAction::Pause,
            Event::Resume { .. } => KernelAction::Resume,
            Event::LeaseExpired => KernelAction::LeaseExpired,
            Event::Release => KernelAction::Release,
            Event::Exit { .. } => KernelAction::Exit,
            Event::Fail { .. } => KernelAction::Fail,
            Event::Kill { .. } => KernelAction::Kill,
        }
    }
}

/// A transition the event cannot make from the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("process {pid} is {state}: cannot {event}")]
pub struct TransitionError {
    /// The process.
    pub pid: Pid,
    /// Its current state's name.
    pub state: &'static str,
    /// The event refused.
    pub event: &'static str,
}

/// The result of a transition: the next state and the audit record of the change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state after the event.
    pub next: ProcState,
    /// The record the change appends to the audit chain.
    pub record: AuditDraft,
}

/// Applies `event` to a process in `state`. Pure: the caller commits the result.
pub fn transition(pid: Pid, state: &ProcState, event: Event) -> Result<Transition, TransitionError> {
    use ProcState as S;
    let refuse =
        |state: &ProcState, event: &Event| TransitionError { pid, state: state.name(), event: event.action().as_str() };
    let (next, actor, extra) = match (state, &event) {
        (S::Runnable { .. }, Event::Lease(lease)) => (
            S::Running { lease: lease.clone() },
            Actor::Kernel,
            json!({"owner": lease.owner.0, "quantum": lease.quantum}),
        ),
        (S::Running { .. }, Event::Yield { not_before }) => (
            S::Runnable { not_before: *not_before },
            Actor::Kernel,
            json!({"not_before": not_before.map(|t| t.micros())}),
        ),
        (S::Running { .. }, Event::LeaseExpired | Event::Release) => {
            (S::Runnable { not_before: None }, Actor::Kernel, json!({}))
        }
        (S::Running { .. }, Event::Exit { code, result }) => {
            (S::Exited { code: *code, result: result.clone() }, Actor::Process(pid), json!({"code": code}))
        }
        (S::Running { .. }, Event::Park(on)) => {
            (S::Waiting { on: on.clone() }, Actor::Process(pid), json!({"on": on.to_string()}))
        }
        (S::Waiting { .. }, Event::Wake) => (S::Runnable { not_before: None }, Actor::Kernel, json!({})),
        // A running process is paused by losing its lease: its quantum is
        // cancelled (as by a kill) and it resumes runnable, re-running nothing.
        (S::Runnable { .. } | S::Running { .. }, Event::Pause { by }) => {
            (S::Paused { was: Box::new(S::Runnable { not_before: None }) }, by.clone(), json!({"was": "runnable"}))
        }
        (S::Waiting { .. }, Event::Pause { by }) => {
            (S::Paused { was: Box::new(state.clone()) }, by.clone(), json!({"was": state.to_string()}))
        }
        (S::Paused { was }, Event::Resume { by }) => ((**was).clone(), by.clone(), json!({})),
        // The wait of a paused process ended (a decision, a child, a message):
        // it stays paused, and resumes runnable instead of waiting.
        (S::Paused { was }, Event::Wake) if matches!(**was, S::Waiting { .. }) => {
            (S::Paused { was: Box::new(S::Runnable { not_before: None }) }, Actor::Kernel, json!({}))
        }
        (S::Runnable { .. } | S::Running { .. }, Event::Fail { kind, error }) => (
            S::Failed { kind: *kind, error: error.clone() },
            Actor::Kernel,
            json!({"kind": kind.as_str(), "error": error}),
        ),
        (S::Runnable { .. } | S::Running { .. } | S::Waiting { .. } | S::Paused { .. }, Event::Kill { by, reason }) => {
            (S::Killed { by: by.clone(), reason: reason.clone() }, by.clone(), json!({"reason": reason}))
        }
        (S::Running { .. }, Event::Lease(_) | Event::Wake | Event::Resume { .. })
        | (
            S::Runnable { .. },
            Event::Yield { .. }
            | Event::LeaseExpired
            | Event::Release
            | Event::Exit { .. }
            | Event::Park(_)
            | Event::Wake
            | Event::Resume { .. },
        )
        | (
            S::Waiting { .. },
            Event::Lease(_)
            | Event::Yield { .. }
            | Event::LeaseExpired
            | Event::Release
            | Event::Exit { .. }
            | Event::Park(_)
            | Event::Resume { .. }
            | Event::Fail { .. },
        )
        | (
            S::Paused { .. },
            Event::Lease(_)
            | Event::Yield { .. }
            | Event::LeaseExpired
            | Event::Release
            | Event::Exit { .. }
            | Event::Park(_)
            | Event::Wake
            | Event::Pause { .. }
            | Event::Fail { .. },
        )
        | (S::Exited { .. } | S::Failed { .. } | S::Killed { .. }, _) => {
            return Err(refuse(state, &event));
        }
    };
    let mut args = json!({"from": state.name(), "to": next.name()});
    if let (Some(obj), Some(extra)) = (args.as_object_mut(), extra.as_object()) {
        obj.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let record = AuditDraft {
        actor,
        kind: AuditKind::State,
        action: event.action().into(),
        pid: Some(pid),
        args,
        decision: None,
        grant: None,
        outcome: Outcome::Ok,
        result: None,
        detail: Some(format!("{} -> {}", state.name(), next.name())),
    };
    Ok(Transition { next, record })
}
