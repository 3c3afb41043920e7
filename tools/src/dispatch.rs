//! Running a validated call.
//!
//! Calls come in three kinds, because they commit differently:
//! - kernel calls (`exit`) change kernel state and commit with the quantum;
//! - local calls (`now`, `read_file`, `list_dir`) have no effect outside the
//!   process and may safely run again after a crash;
//! - external calls (`write_file`) change the world, so the runtime writes an
//!   intent record before running them and never re-runs one whose end was not
//!   recorded.

use libos_kernel::Timestamp;

use crate::call::ToolCall;
use crate::workspace::Workspace;
use crate::{list_dir, now, read_file, write_file};

/// How a call must be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// End the process with this result.
    Exit {
        /// The process's result.
        result: String,
    },
    /// Run it with [`ToolCall::run`]; no effect outside the process.
    Local,
    /// Run it with [`ToolCall::run`] after writing an intent record.
    External,
}

/// What the tools see of the process calling them.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The workspace file tools are confined to.
    pub workspace: Workspace,
    /// The time of the call.
    pub now: Timestamp,
}

/// A tool's result as the model will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutput {
    /// It worked; the text is the result.
    Ok(String),
    /// It failed in a way the model should hear about (missing file, not a directory).
    Error(String),
}

impl ToolCall {
    /// How this call commits.
    pub fn dispatch(&self) -> Dispatch {
        match self {
            ToolCall::Exit(a) => Dispatch::Exit { result: a.result.clone() },
            ToolCall::Now(_) | ToolCall::ReadFile(_) | ToolCall::ListDir(_) => Dispatch::Local,
            ToolCall::WriteFile(_) => Dispatch::External,
        }
    }

    /// Runs a local or external call. Kernel calls return a note that they are
    /// committed by the kernel; the runtime never runs them here.
    pub fn run(&self, ctx: &ToolContext) -> ToolOutput {
        match self {
            ToolCall::Exit(_) => ToolOutput::Ok("exiting".to_string()),
            ToolCall::Now(_) => now::run(ctx),
            ToolCall::ReadFile(a) => read_file::run(a, ctx),
            ToolCall::ListDir(a) => list_dir::run(a, ctx),
            ToolCall::WriteFile(a) => write_file::run(a, ctx),
        }
    }
}
