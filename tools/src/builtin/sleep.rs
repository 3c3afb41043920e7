//! `sleep(seconds)`: park until a deadline (an interrupt wakes early). A kernel call.

use libos_core::syscall::Syscall;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::builtin::args::MAX_SLEEP_SECONDS;
use crate::builtin::args::Seconds;
use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// Arguments of `sleep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// How long, in seconds (at most a week).
    pub seconds: Seconds,
}

/// `sleep`.
pub struct Sleep;

impl Tool for Sleep {
    type Args = SleepArgs;
    const NAME: &'static str = "sleep";
    const DESCRIPTION: &'static str =
        "Wait for a number of seconds (parked, at no cost). An interrupt message wakes you early.";

    fn dispatch(a: &SleepArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::Sleep { duration: a.seconds.duration() }))
    }
}
