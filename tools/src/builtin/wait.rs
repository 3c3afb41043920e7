//! `wait(pid | "any")`: park until a child ends. A kernel call; waiting
//! for one's own child needs no grant.

use libos_core::syscall::Syscall;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::args::WaitTarget;
use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// Arguments of `wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// A child's pid, or "any".
    pub pid: WaitTarget,
}

/// `wait`.
pub struct Wait;

impl Tool for Wait {
    type Args = WaitArgs;
    const NAME: &'static str = "wait";
    const DESCRIPTION: &'static str = "Wait until one of your children (or any, with \"any\") ends; returns its exit \
                                       status and result. You are parked, at no cost, until then.";

    fn dispatch(a: &WaitArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        let target = match a.pid {
            WaitTarget::Pid(p) => Some(p),
            WaitTarget::Any => None,
        };
        Ok(Dispatch::Kernel(Syscall::Wait { target }))
    }
}
