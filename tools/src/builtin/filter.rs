//! The message filter `read` and `receive` share.

use libos_core::ipc::{MessageFilter, MessageKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::args::{KindArg, PidArg};

/// Arguments of `read` and `receive`: a filter, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterArgs {
    /// Only messages from this pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PidArg>,
    /// Only on this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Only of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<KindArg>,
    /// Only with this correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl FilterArgs {
    /// The typed filter.
    pub fn filter(&self) -> MessageFilter {
        MessageFilter {
            from: self.from.map(|p| p.0),
            channel: self.channel.clone(),
            kind: self.kind.map(MessageKind::from),
            correlation_id: self.correlation_id.clone(),
        }
    }
}
