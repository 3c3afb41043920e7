//! `now()`: the current time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispatch::{Caller, Dispatch, ToolContext, ToolOutput};
use crate::tool::Tool;

/// `now` takes no arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NowArgs {}

/// `now`.
pub struct Now;

impl Tool for Now {
    type Args = NowArgs;
    const NAME: &'static str = "now";
    const DESCRIPTION: &'static str = "Get the current date and time (UTC).";

    fn dispatch(_: &NowArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Local)
    }

    fn run(_: &NowArgs, ctx: &ToolContext) -> ToolOutput {
        ToolOutput::Ok(format!("{} (unix {})", ctx.now.to_rfc3339(), ctx.now.micros().div_euclid(1_000_000)))
    }
}
