//! `memory_pin(oid)`: show an object in every prompt. A kernel call.

use libos_core::syscall::Syscall;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::args::ObjectIdArg;
use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// Arguments of `memory_pin` and `memory_unpin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryPinArgs {
    /// The object id.
    pub oid: ObjectIdArg,
}

/// `memory_pin`.
pub struct MemoryPin;

impl Tool for MemoryPin {
    type Args = MemoryPinArgs;
    const NAME: &'static str = "memory_pin";
    const DESCRIPTION: &'static str =
        "Pin an object of your view: its content is shown in every prompt (within your token budget).";

    fn dispatch(a: &MemoryPinArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::MemoryPin { oid: a.oid.0, pinned: true }))
    }
}
