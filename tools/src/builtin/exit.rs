//! `exit(result)`: end the process, reporting a result.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// Longest result accepted, in bytes.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// Arguments of `exit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitArgs {
    /// The result of the work, or why it could not be done.
    pub result: String,
}

/// `exit`.
pub struct Exit;

impl Tool for Exit {
    type Args = ExitArgs;
    const NAME: &'static str = "exit";
    const DESCRIPTION: &'static str = "Finish: end this process and report the result of its work. Call it once the \
                                       goal is met (or cannot be met), with a short, complete answer.";

    fn check(a: &ExitArgs) -> Result<(), String> {
        if a.result.len() > MAX_RESULT_BYTES {
            return Err(format!("result is {} bytes, over the limit of {MAX_RESULT_BYTES}", a.result.len()));
        }
        Ok(())
    }

    fn dispatch(a: &ExitArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Exit { result: a.result.clone() })
    }
}
