//! `exit(result)`: end the process, reporting a result.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::spec::ToolSpec;

/// Longest result accepted, in bytes.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// Arguments of `exit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitArgs {
    /// The outcome of the process's work, for whoever spawned it.
    pub result: String,
}

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "exit",
        description: "Finish: end this process and report the result of its work. Call it once the goal is met \
                      (or cannot be met), with a short, complete answer.",
        parameters: json!({
            "type": "object",
            "properties": {
                "result": {"type": "string", "description": "The result of the work, or why it could not be done."}
            },
            "required": ["result"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn validate(a: &ExitArgs) -> Result<(), String> {
    if a.result.len() > MAX_RESULT_BYTES {
        return Err(format!("result is {} bytes, over the limit of {MAX_RESULT_BYTES}", a.result.len()));
    }
    Ok(())
}
