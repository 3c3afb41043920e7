//! `signal(pid, action)`: pause, resume or kill a process. A kernel call;
//! one's own child needs no grant, any other `process:<pid>` signal.

use libos_core::caps::{Resource, ResourceKind, Right};
use libos_core::syscall::{Kinship, Need, Syscall};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::args::{ActionArg, PidArg};
use crate::dispatch::{Caller, Dispatch, Refusal};
use crate::tool::Tool;

/// Arguments of `signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalArgs {
    /// The target's pid.
    pub pid: PidArg,
    /// `pause`, `resume` or `kill`.
    pub action: ActionArg,
}

/// `signal`.
pub struct Signal;

impl Tool for Signal {
    type Args = SignalArgs;
    const NAME: &'static str = "signal";
    const DESCRIPTION: &'static str = "Pause, resume or kill one of your children.";

    fn needs(a: &SignalArgs, _caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        let target = a.pid.0;
        Ok(vec![Need {
            resource: Resource::new(ResourceKind::Process, target.to_string()),
            right: Right::Signal,
            kinship: Kinship::Child(target),
        }])
    }

    fn dispatch(a: &SignalArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::Signal { pid: a.pid.0, action: a.action.into() }))
    }
}
