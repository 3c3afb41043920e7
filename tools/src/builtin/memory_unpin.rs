//! `memory_unpin(oid)`: stop showing a pinned object. A kernel call.

use libos_core::syscall::Syscall;

use crate::builtin::memory_pin::MemoryPinArgs;
use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// `memory_unpin`.
pub struct MemoryUnpin;

impl Tool for MemoryUnpin {
    type Args = MemoryPinArgs;
    const NAME: &'static str = "memory_unpin";
    const DESCRIPTION: &'static str = "Stop showing a pinned object in your prompt.";

    fn dispatch(a: &MemoryPinArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::MemoryPin { oid: a.oid.0, pinned: false }))
    }
}
