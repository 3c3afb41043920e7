//! `memory_read(object)`: read an object by name or id. A kernel call; the
//! view's handles decide.

use libos_core::syscall::{ObjectRef, Syscall};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::args::ObjectIdArg;
use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// An object by id or name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ObjectArg {
    /// An object id from your view.
    Oid(ObjectIdArg),
    /// A name in your namespace.
    Name(String),
}

/// Arguments of `memory_read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryReadArgs {
    /// A name in your namespace, or an object id from your view.
    pub object: ObjectArg,
}

/// `memory_read`.
pub struct MemoryRead;

impl Tool for MemoryRead {
    type Args = MemoryReadArgs;
    const NAME: &'static str = "memory_read";
    const DESCRIPTION: &'static str = "Read an object: a name in your namespace, or an object id from your view.";

    fn dispatch(a: &MemoryReadArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        let target = match &a.object {
            ObjectArg::Oid(o) => ObjectRef::Oid(o.0),
            ObjectArg::Name(n) => ObjectRef::Name(n.clone()),
        };
        Ok(Dispatch::Kernel(Syscall::MemoryRead { target }))
    }
}
