//! `send(to, body, kind, channel, correlation_id, reply_to)`: post a
//! message. A kernel call; one's parent and own children need no grant,
//! any other recipient `message:<pid>` send.

use libos_core::caps::{Resource, ResourceKind, Right};
use libos_core::ipc::{MAX_BODY_BYTES, MessageKind, NewMessage};
use libos_core::syscall::{Kinship, Need, Syscall};
use libos_core::{MsgId, Pid};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::args::{KindArg, Recipient};
use crate::dispatch::{Caller, Dispatch, Refusal};
use crate::tool::Tool;

/// Arguments of `send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendArgs {
    /// Recipient pid, or "parent".
    pub to: Recipient,
    /// The text.
    pub body: String,
    /// `normal` (default) or `interrupt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<KindArg>,
    /// A channel name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Ties a reply to its request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Id of the message this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
}

impl SendArgs {
    /// The typed message (`parent` is the caller's).
    pub fn message(&self, parent: Option<Pid>) -> Result<NewMessage, String> {
        Ok(NewMessage {
            to: self.to.resolve(parent)?,
            body: self.body.clone(),
            kind: self.kind.map_or(MessageKind::Normal, MessageKind::from),
            channel: self.channel.clone(),
            correlation_id: self.correlation_id.clone(),
            reply_to: self.reply_to.map(MsgId),
        })
    }
}

/// `send`.
pub struct Send;

impl Tool for Send {
    type Args = SendArgs;
    const NAME: &'static str = "send";
    const DESCRIPTION: &'static str = "Send a message to a process: your parent or your children need no grant. \
                                       `interrupt` messages are shown first and wake a receiving or sleeping process.";

    fn check(a: &SendArgs) -> Result<(), String> {
        if a.body.len() > MAX_BODY_BYTES {
            return Err(format!("body is {} bytes, more than the {MAX_BODY_BYTES} allowed", a.body.len()));
        }
        Ok(())
    }

    fn needs(a: &SendArgs, caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        let to = a.to.resolve(caller.parent).map_err(Refusal::Invalid)?;
        Ok(vec![Need {
            resource: Resource::new(ResourceKind::Message, to.to_string()),
            right: Right::Send,
            kinship: Kinship::ParentOrChild(to),
        }])
    }

    fn dispatch(a: &SendArgs, caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::Send(a.message(caller.parent)?)))
    }
}
