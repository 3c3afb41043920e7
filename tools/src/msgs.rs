//! Message and timer tools: `send`, `read`, `receive`, `sleep`, `ask_human`.
//! Kernel calls: they commit with the quantum, and `receive`, `sleep` and
//! `ask_human` may park the process.

use std::time::Duration;

use libos_kernel::ipc::{MAX_BODY_BYTES, MessageFilter, MessageKind, NewMessage};
use libos_kernel::{MsgId, Pid};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::spec::ToolSpec;

/// Longest sleep, in seconds (a week).
pub const MAX_SLEEP_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// A recipient: a pid, or `"parent"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Recipient {
    /// By pid.
    Pid(i64),
    /// `"parent"` (or a pid written as a string).
    Name(String),
}

impl Recipient {
    /// The pid, given the caller's parent.
    pub fn resolve(&self, parent: Option<Pid>) -> Result<Pid, String> {
        match self {
            Recipient::Pid(n) => n.to_string().parse(),
            Recipient::Name(s) if s == "parent" => parent.ok_or_else(|| "you have no parent to send to".to_string()),
            Recipient::Name(s) => s.parse().map_err(|_| format!("`to` must be a pid or \"parent\", not `{s}`")),
        }
    }
}

/// Arguments of `send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendArgs {
    /// The recipient: a pid, or `"parent"`.
    pub to: Recipient,
    /// The text.
    pub body: String,
    /// `normal` (default) or `interrupt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A channel name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Ties a reply to its request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The message id this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
}

impl SendArgs {
    /// The typed message (`parent` is the caller's), or why the arguments are not one.
    pub fn message(&self, parent: Option<Pid>) -> Result<NewMessage, String> {
        let to = self.to.resolve(parent)?;
        if self.body.len() > MAX_BODY_BYTES {
            return Err(format!("body is {} bytes, more than the {MAX_BODY_BYTES} allowed", self.body.len()));
        }
        Ok(NewMessage {
            to,
            body: self.body.clone(),
            kind: self.kind.as_deref().map_or(Ok(MessageKind::Normal), MessageKind::parse)?,
            channel: self.channel.clone(),
            correlation_id: self.correlation_id.clone(),
            reply_to: self.reply_to.map(MsgId),
        })
    }
}

/// Arguments of `read` and `receive`: a filter, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterArgs {
    /// Only from this pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Only on this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Only of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only with this correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl FilterArgs {
    /// The typed filter.
    pub fn filter(&self) -> Result<MessageFilter, String> {
        Ok(MessageFilter {
            from: self.from.map(|p| p.to_string().parse::<Pid>()).transpose()?,
            channel: self.channel.clone(),
            kind: self.kind.as_deref().map(MessageKind::parse).transpose()?,
            correlation_id: self.correlation_id.clone(),
        })
    }
}

/// Arguments of `sleep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// How long, in seconds.
    pub seconds: f64,
}

impl SleepArgs {
    /// The duration, or why it is not one.
    pub fn duration(&self) -> Result<Duration, String> {
        if !self.seconds.is_finite() || self.seconds < 0.0 {
            return Err(format!("seconds must be a non-negative number, not {}", self.seconds));
        }
        if self.seconds > MAX_SLEEP_SECONDS {
            return Err(format!("seconds must be at most {MAX_SLEEP_SECONDS} (a week)"));
        }
        Ok(Duration::from_secs_f64(self.seconds))
    }
}

/// Arguments of `ask_human`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskHumanArgs {
    /// The question.
    pub question: String,
}

fn filter_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "from": {"type": "integer", "description": "Only messages from this pid."},
            "channel": {"type": "string"},
            "kind": {"type": "string", "enum": ["normal", "interrupt"]},
            "correlation_id": {"type": "string"}
        },
        "additionalProperties": false
    })
}

pub(crate) fn send_spec() -> ToolSpec {
    ToolSpec {
        name: "send",
        description: "Send a message to a process: your parent or your children need no grant. `interrupt` \
                      messages are shown first and wake a receiving or sleeping process.",
        parameters: json!({
            "type": "object",
            "properties": {
                "to": {"anyOf": [{"type": "integer"}, {"type": "string", "enum": ["parent"]}],
                       "description": "Recipient pid, or \"parent\"."},
                "body": {"type": "string"},
                "kind": {"type": "string", "enum": ["normal", "interrupt"]},
                "channel": {"type": "string"},
                "correlation_id": {"type": "string"},
                "reply_to": {"type": "integer", "description": "Id of the message this answers."}
            },
            "required": ["to", "body"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn read_spec() -> ToolSpec {
    ToolSpec {
        name: "read",
        description: "Take your unread messages that match the filter (all, if none given), without waiting.",
        parameters: filter_schema(),
    }
}

pub(crate) fn receive_spec() -> ToolSpec {
    ToolSpec {
        name: "receive",
        description: "Take the first unread message matching the filter; if there is none, wait (parked, at no \
                      cost) until one arrives. An interrupt wakes you whatever the filter.",
        parameters: filter_schema(),
    }
}

pub(crate) fn sleep_spec() -> ToolSpec {
    ToolSpec {
        name: "sleep",
        description: "Wait for a number of seconds (parked, at no cost). An interrupt message wakes you early.",
        parameters: json!({
            "type": "object",
            "properties": {"seconds": {"type": "number", "minimum": 0}},
            "required": ["seconds"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn ask_human_spec() -> ToolSpec {
    ToolSpec {
        name: "ask_human",
        description: "Ask the operator a question and wait (parked) for the answer.",
        parameters: json!({
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
            "additionalProperties": false
        }),
    }
}
