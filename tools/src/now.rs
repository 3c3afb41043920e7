//! `now()`: the current time.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::{ToolContext, ToolOutput};
use crate::spec::ToolSpec;

/// `now` takes no arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NowArgs {}

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "now",
        description: "Get the current date and time (UTC).",
        parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
    }
}

pub(crate) fn run(ctx: &ToolContext) -> ToolOutput {
    ToolOutput::Ok(format!("{} (unix {})", ctx.now.to_rfc3339(), ctx.now.micros().div_euclid(1_000_000)))
}
