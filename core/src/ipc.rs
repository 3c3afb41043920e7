//! Messages between processes, and requests to humans (approvals and questions).

use std::fmt;

use crate::actor::Actor;
use crate::caps::{Resource, Right};
use crate::ids::{MsgId, Pid, RequestId};
use crate::time::Timestamp;

/// Longest message body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How urgent a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Read when the recipient gets to it.
    Normal,
    /// Shown first in the next prompt; wakes a process in `receive` or `sleep`.
    Interrupt,
}

impl MessageKind {
    /// `normal` or `interrupt`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Normal => "normal",
            MessageKind::Interrupt => "interrupt",
        }
    }

    /// Inverse of [`MessageKind::as_str`].
    pub fn parse(text: &str) -> Result<MessageKind, String> {
        match text {
            "normal" => Ok(MessageKind::Normal),
            "interrupt" => Ok(MessageKind::Interrupt),
            other => Err(format!("unknown message kind `{other}` (kinds are normal, interrupt)")),
        }
    }
}

/// Which messages `read` and `receive` take. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// Only from this process.
    pub from: Option<Pid>,
    /// Only on this channel.
    pub channel: Option<String>,
    /// Only of this kind.
    pub kind: Option<MessageKind>,
    /// Only with this correlation id.
    pub correlation_id: Option<String>,
}

impl MessageFilter {
    /// Whether `m` passes the filter.
    pub fn matches(&self, m: &Message) -> bool {
        self.from.is_none_or(|p| m.from == Actor::Process(p))
            && self.channel.as_ref().is_none_or(|c| m.channel.as_ref() == Some(c))
            && self.kind.is_none_or(|k| m.kind == k)
            && self.correlation_id.as_ref().is_none_or(|c| m.correlation_id.as_ref() == Some(c))
    }
}

impl fmt::Display for MessageFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.from {
            parts.push(format!("from={p}"));
        }
        if let Some(c) = &self.channel {
            parts.push(format!("channel={c}"));
        }
        if let Some(k) = self.kind {
            parts.push(format!("kind={}", k.as_str()));
        }
        if let Some(c) = &self.correlation_id {
            parts.push(format!("correlation_id={c}"));
        }
        if parts.is_empty() { f.write_str("any") } else { f.write_str(&parts.join(" ")) }
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The recipient.
    pub to: Pid,
    /// The text.
    pub body: String,
    /// Normal or interrupt.
    pub kind: MessageKind,
    /// An optional channel name.
    pub channel: Option<String>,
    /// Ties a reply to its request.
    pub correlation_id: Option<String>,
    /// The message this one answers.
    pub reply_to: Option<MsgId>,
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MsgId,
    /// Who sent it.
    pub from: Actor,
    /// The recipient.
    pub to: Pid,
    /// Normal or interrupt.
    pub kind: MessageKind,
    /// Channel, if any.
    pub channel: Option<String>,
    /// Correlation id, if any.
    pub correlation_id: Option<String>,
    /// The message answered, if any.
    pub reply_to: Option<MsgId>,
    /// The text.
    pub body: String,
    /// When it was sent.
    pub sent_at: Timestamp,
    /// When the recipient took it (`read` or `receive`), if it has.
    pub read_at: Option<Timestamp>,
}

impl Message {
    /// The message as a tool result or prompt line.
    pub fn render(&self) -> String {
        let mut head = format!("message {} from {}", self.id, self.from);
        if self.kind == MessageKind::Interrupt {
            head.push_str(" [interrupt]");
        }
        if let Some(c) = &self.channel {
            head.push_str(&format!(" channel={c}"));
        }
        if let Some(c) = &self.correlation_id {
            head.push_str(&format!(" correlation_id={c}"));
        }
        if let Some(r) = self.reply_to {
            head.push_str(&format!(" reply_to={r}"));
        }
        format!("{head}: {}", self.body)
    }
}

/// What a request asks a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// May this exact call go ahead?
    Approval {
        /// The resource whose grant said `ask`.
        resource: Resource,
        /// The right asked for.
        right: Right,
    },
    /// A question from `ask_human`.
    Question {
        /// The question.
        text: String,
    },
}

/// Where a request stands. Decided exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestStatus {
    /// Waiting for a human.
    Open,
    /// Approved: the parked call runs once.
    Approved,
    /// Denied, with the reason given to the model.
    Denied {
        /// Why.
        reason: String,
    },
    /// Answered (questions).
    Answered {
        /// The answer.
        text: String,
    },
    /// The process ended first (killed); nobody can decide it now.
    Cancelled,
}

impl RequestStatus {
    /// `open`, `approved`, `denied`, `answered` or `cancelled`.
    pub fn name(&self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied { .. } => "denied",
            RequestStatus::Answered { .. } => "answered",
            RequestStatus::Cancelled => "cancelled",
        }
    }
}

/// What a tool says of itself (MCP tool annotations: `title`,
/// `readOnlyHint`, `destructiveHint`, `idempotentHint`, `openWorldHint`).
/// Display only: shown on approvals and in `libos images show` so a person
/// knows what the tool's source claims, never consulted by a decision, and
/// not part of what an approval binds to (tool, canonical arguments,
/// resource, right).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolHints {
    /// A human-readable title.
    pub title: Option<String>,
    /// The tool says it does not modify its environment.
    pub read_only: Option<bool>,
    /// The tool says it may perform destructive updates.
    pub destructive: Option<bool>,
    /// The tool says calling it twice with the same arguments does nothing more.
    pub idempotent: Option<bool>,
    /// The tool says it interacts with an open world (the internet, ...).
    pub open_world: Option<bool>,
}

impl ToolHints {
    /// The hints as short words, e.g. `read-only, open-world`; empty when none were given.
    pub fn summary(&self) -> String {
        let mut out = Vec::new();
        let mut flag = |v: Option<bool>, yes: &'static str, no: &'static str| match v {
            Some(true) => out.push(yes),
            Some(false) => out.push(no),
            None => {}
        };
        flag(self.read_only, "read-only", "may write");
        flag(self.destructive, "destructive", "not destructive");
        flag(self.idempotent, "idempotent", "not idempotent");
        flag(self.open_world, "open-world", "closed-world");
        out.join(", ")
    }

    /// Title and summary for people: `title "Echo"; read-only, open-world`,
    /// or `-` when the tool said nothing. The title is quoted as Rust
    /// quotes a string, so control characters in it show escaped.
    pub fn label(&self) -> String {
        let summary = self.summary();
        match (&self.title, summary.is_empty()) {
            (Some(t), true) => format!("title {t:?}"),
            (Some(t), false) => format!("title {t:?}; {summary}"),
            (None, true) => "-".to_string(),
            (None, false) => summary,
        }
    }

    /// Whether the tool said nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == ToolHints::default()
    }
}

/// A request to a human, with the exact call it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its id.
    pub id: RequestId,
    /// The process that asked.
    pub pid: Pid,
    /// Its image.
    pub image: String,
    /// Its goal.
    pub goal: String,
    /// The parked tool.
    pub tool: String,
    /// The parked call's canonical arguments.
    pub args: String,
    /// sha256 of `args`, as recorded in the audit chain when it parked.
    pub args_sha256: String,
    /// Approval or question.
    pub kind: RequestKind,
    /// What the parked tool says of itself (an MCP tool's annotations),
    /// for display; `None` when it said nothing. Not bound by the approval.
    pub hints: Option<ToolHints>,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was made.
    pub created_at: Timestamp,
    /// Who decided it and when.
    pub decided: Option<(Actor, Timestamp)>,
}
