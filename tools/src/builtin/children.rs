//! `children()`: list one's children. A kernel call.

use libos_core::syscall::Syscall;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// `children` takes no arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildrenArgs {}

/// `children`.
pub struct Children;

impl Tool for Children {
    type Args = ChildrenArgs;
    const NAME: &'static str = "children";
    const DESCRIPTION: &'static str = "List your children with their states.";

    fn dispatch(_: &ChildrenArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::Children))
    }
}
