//! `memory_write(name, content, kind)`: create or update an object in
//! one's own namespace. A kernel call; the handles decide, in the kernel.

use libos_core::syscall::Syscall;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// Arguments of `memory_write`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryWriteArgs {
    /// The object's name in your namespace.
    pub name: String,
    /// Its content.
    pub content: String,
    /// e.g. text, json, note (default text)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `memory_write`.
pub struct MemoryWrite;

impl Tool for MemoryWrite {
    type Args = MemoryWriteArgs;
    const NAME: &'static str = "memory_write";
    const DESCRIPTION: &'static str =
        "Create or update an object in your private memory namespace (durable across restarts).";

    fn check(a: &MemoryWriteArgs) -> Result<(), String> {
        libos_core::memory::check_name(&a.name)
    }

    fn dispatch(a: &MemoryWriteArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::MemoryWrite {
            name: a.name.clone(),
            content: a.content.clone(),
            kind: a.kind.clone().unwrap_or_else(|| "text".to_string()),
        }))
    }
}
