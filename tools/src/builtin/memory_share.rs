//! `memory_share(oid, pid, rights)`: give one's own child a handle on an
//! object, never more than one holds. A kernel call.

use libos_core::syscall::Syscall;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::args::{ObjectIdArg, ObjectRights, PidArg};
use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// Arguments of `memory_share`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryShareArgs {
    /// The object id.
    pub oid: ObjectIdArg,
    /// One of your children.
    pub pid: PidArg,
    /// `read` or `read,write` (at most what you hold).
    pub rights: ObjectRights,
}

/// `memory_share`.
pub struct MemoryShare;

impl Tool for MemoryShare {
    type Args = MemoryShareArgs;
    const NAME: &'static str = "memory_share";
    const DESCRIPTION: &'static str =
        "Give one of your children a handle on an object, with at most the rights you hold.";

    fn dispatch(a: &MemoryShareArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::MemoryShare { oid: a.oid.0, pid: a.pid.0, rights: a.rights.rights }))
    }
}
