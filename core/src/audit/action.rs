//! What an audit record says was done, and the capability decision behind it.
//!
//! Each type writes the exact text the audit table has always held (its
//! `as_str`), and reading it back is the inverse: the canonical bytes of a
//! record are computed from that text, so chains written before these types
//! existed verify unchanged. A stored value no variant writes is corruption
//! ([`BadField`]), never a default.

use std::fmt;

use crate::caps::Effect;
use crate::tool_name::ToolName;

use super::record::AuditKind;

/// The capability decision a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuditDecision {
    /// A grant allowed it.
    Allow,
    /// A grant asked a human first.
    Ask,
    /// A grant, or the absence of one, refused it.
    Deny,
    /// Allowed without a grant: a process acting on its parent or children.
    Kinship,
    /// An `ask` that a human approved (the call was re-dispatched).
    Approved,
}

impl AuditDecision {
    /// Every decision.
    pub const ALL: [AuditDecision; 5] = [
        AuditDecision::Allow,
        AuditDecision::Ask,
        AuditDecision::Deny,
        AuditDecision::Kinship,
        AuditDecision::Approved,
    ];

    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditDecision::Allow => "allow",
            AuditDecision::Ask => "ask",
            AuditDecision::Deny => "deny",
            AuditDecision::Kinship => "kinship",
            AuditDecision::Approved => "approved",
        }
    }

    /// Inverse of [`AuditDecision::as_str`].
    pub fn parse(s: &str) -> Option<AuditDecision> {
        AuditDecision::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl From<Effect> for AuditDecision {
    fn from(e: Effect) -> AuditDecision {
        match e {
            Effect::Allow => AuditDecision::Allow,
            Effect::Ask => AuditDecision::Ask,
            Effect::Deny => AuditDecision::Deny,
        }
    }
}

impl fmt::Display for AuditDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! kernel_actions {
    ($($(#[$doc:meta])* $variant:ident = $text:literal in $kind:ident,)*) => {
        /// An action the kernel itself names: a state transition's event, an
        /// operator's command, or the kernel's own bookkeeping. Each belongs to
        /// one record kind ([`KernelAction::kind`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum KernelAction {
            $($(#[$doc])* $variant,)*
        }

        impl KernelAction {
            /// Every kernel action.
            pub const ALL: &'static [KernelAction] = &[$(KernelAction::$variant,)*];

            /// Stable name, as stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(KernelAction::$variant => $text,)*
                }
            }

            /// The kind of record this action appears in.
            pub fn kind(self) -> AuditKind {
                match self {
                    $(KernelAction::$variant => AuditKind::$kind,)*
                }
            }
        }
    };
}

kernel_actions! {
    /// `runnable -> running`: a scheduler took a lease.
    Lease = "lease" in State,
    /// The quantum ended and the process stays runnable.
    Yield = "yield" in State,
    /// The process parked on a wait.
    Park = "park" in State,
    /// A wait was satisfied.
    Wake = "wake" in State,
    /// Paused by an operator or a process.
    Pause = "pause" in State,
    /// Resumed to what it was doing.
    Resume = "resume" in State,
    /// A lease ran out (its scheduler died).
    LeaseExpired = "lease_expired" in State,
    /// A lease given back without a commit.
    Release = "release" in State,
    /// The process exited.
    Exit = "exit" in State,
    /// The process failed.
    Fail = "fail" in State,
    /// The process was killed.
    Kill = "kill" in State,
    /// An operator spawned a process.
    Spawn = "spawn" in Operator,
    /// An operator sent a message.
    Send = "send" in Operator,
    /// An operator changed a priority.
    Renice = "renice" in Operator,
    /// An operator added a grant.
    Grant = "grant" in Operator,
    /// An operator revoked a grant.
    Revoke = "revoke" in Operator,
    /// A human approved a request.
    Approve = "approve" in Operator,
    /// A human denied a request.
    Deny = "deny" in Operator,
    /// A human answered a question.
    Answer = "answer" in Operator,
    /// An operator let a scheduler run programs unconfined.
    UnconfinedShell = "unconfined_shell" in Operator,
    /// An approval request opened, bound to the call that parked.
    Request = "request" in Kernel,
    /// A request cancelled because its process ended.
    CancelRequest = "cancel_request" in Kernel,
    /// A grant delegated (or dropped) at a spawn.
    Delegate = "delegate" in Kernel,
    /// A network connection a running program attempted, refused.
    Connect = "connect" in Kernel,
}

impl KernelAction {
    /// Inverse of [`KernelAction::as_str`].
    pub fn parse(s: &str) -> Option<KernelAction> {
        KernelAction::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for KernelAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a record says was done.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// One of the kernel's own actions.
    Kernel(KernelAction),
    /// A tool call (or its effect, or its completion after a wait), by the tool's name.
    Tool(ToolName),
    /// A rejected model output that named no tool: stored as `(none)`.
    NoTool,
    /// A rejected model output that named a tool by a name no tool can
    /// have, kept verbatim as the evidence of what the model said.
    BadName(String),
}

/// Text of [`AuditAction::NoTool`].
const NO_TOOL: &str = "(none)";

impl AuditAction {
    /// A tool call's action.
    pub fn tool(name: &ToolName) -> AuditAction {
        AuditAction::Tool(name.clone())
    }

    /// The action of a rejected model output, from the name the model gave (if any).
    pub fn rejected(name: Option<&str>) -> AuditAction {
        match name {
            None => AuditAction::NoTool,
            Some(n) => ToolName::new(n).map_or_else(|_| AuditAction::BadName(n.to_string()), AuditAction::Tool),
        }
    }

    /// Stable text, as stored.
    pub fn as_str(&self) -> &str {
        match self {
            AuditAction::Kernel(a) => a.as_str(),
            AuditAction::Tool(t) => t.as_str(),
            AuditAction::NoTool => NO_TOOL,
            AuditAction::BadName(n) => n,
        }
    }

    /// The tool this record is about, if it is about one.
    pub fn tool_name(&self) -> Option<&ToolName> {
        match self {
            AuditAction::Tool(t) => Some(t),
            AuditAction::Kernel(_) | AuditAction::NoTool | AuditAction::BadName(_) => None,
        }
    }

    /// Whether this is a call of the tool named `name`.
    pub fn is_tool(&self, name: &str) -> bool {
        self.tool_name().is_some_and(|t| t == name)
    }

    /// Whether this is the kernel action `a`.
    pub fn is(&self, a: KernelAction) -> bool {
        *self == AuditAction::Kernel(a)
    }

    /// Reads a stored action back, knowing its record's kind and outcome:
    /// state and operator records hold only kernel actions of their kind;
    /// tool and effect records a tool's name (a rejected output may also
    /// hold `(none)` or the model's unusable name); kernel records one of
    /// their kernel actions or, for a parked call completed or a refusal
    /// decided outside a call, a tool's name. `None` when the text is none
    /// of these.
    ///
    /// A kernel record's text is taken for a kernel action before a tool
    /// name: a dynamic tool named like one (`connect`, `request`,
    /// `delegate`, `cancel_request`) reads back as that action on a kernel
    /// record; its text, and so the chain, is the same either way.
    pub fn parse(kind: AuditKind, outcome: super::Outcome, s: &str) -> Option<AuditAction> {
        let kernel = KernelAction::parse(s).filter(|a| a.kind() == kind).map(AuditAction::Kernel);
        let tool = || ToolName::new(s).ok().map(AuditAction::Tool);
        match kind {
            AuditKind::State | AuditKind::Operator => kernel,
            AuditKind::Kernel => kernel.or_else(tool),
            AuditKind::Effect => tool(),
            AuditKind::Tool if outcome == super::Outcome::Rejected => {
                if s == NO_TOOL {
                    Some(AuditAction::NoTool)
                } else {
                    Some(AuditAction::rejected(Some(s)))
                }
            }
            AuditKind::Tool => tool(),
        }
    }
}

impl From<KernelAction> for AuditAction {
    fn from(a: KernelAction) -> AuditAction {
        AuditAction::Kernel(a)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored record whose field holds a value no record can have: the store
/// was altered or damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record {seq}: field `{field}` holds `{value}`, which no record can have")]
pub struct BadField {
    /// The record.
    pub seq: i64,
    /// The column.
    pub field: &'static str,
    /// The value found, escaped and cut.
    pub value: String,
}
