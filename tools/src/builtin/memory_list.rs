//! `memory_list(namespace)`: list one's view. A kernel call.

use libos_core::syscall::Syscall;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// Arguments of `memory_list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryListArgs {
    /// Only this namespace of your view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `memory_list`.
pub struct MemoryList;

impl Tool for MemoryList {
    type Args = MemoryListArgs;
    const NAME: &'static str = "memory_list";
    const DESCRIPTION: &'static str = "List the objects in your view (ids, names, sizes, rights, pins).";

    fn dispatch(a: &MemoryListArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::MemoryList { namespace: a.namespace.clone() }))
    }
}
