//! What a call is dispatched with: who calls ([`Caller`]), what the tool
//! sees of the process ([`ToolContext`]), how a call commits
//! ([`Dispatch`]), refusals before any grant ([`Refusal`]) and results
//! ([`ToolOutput`]).
//!
//! Calls come in kinds, because they commit differently:
//! - `exit` ends the process with the quantum's commit;
//! - local calls (`now`, `read_file`, `list_dir`) have no effect outside the
//!   process and may safely run again after a crash;
//! - external calls (`write_file`, `delete_file`, `shell`, `http_request`,
//!   every dynamic tool's) change the world, so the
//!   runtime writes an intent record before running them and never re-runs
//!   one whose end was not recorded;
//! - kernel calls (messages, children, timers, questions) are a change of
//!   kernel state, executed by the kernel inside the commit;
//! - `spawn` is a kernel call whose image the runtime resolves first.

use std::sync::Arc;
use std::time::Duration;

use libos_core::budget::Budget;
use libos_core::caps::{GrantSpec, Right};
use libos_core::syscall::{Need, Syscall};
use libos_core::{Pid, Timestamp};
use libos_sandbox::{Cancel, Limits, NetGate, Sandbox};

use crate::http::OperatorHeaders;
use crate::workspace::{Opened, Workspace};

/// How a call must be committed.
#[derive(Debug, Clone, PartialEq)]
pub enum Dispatch {
    /// End the process with this result.
    Exit {
        /// The process's result.
        result: String,
    },
    /// Run it with [`crate::ToolCall::run`]; no effect outside the process.
    Local,
    /// Run it with [`crate::ToolCall::run`] (or [`crate::ToolCall::run_dynamic`])
    /// after writing an intent record.
    External,
    /// The kernel executes it in the commit.
    Kernel(Syscall),
    /// Spawn a child from the named image (resolved by the runtime).
    Spawn {
        /// The image's name.
        image: String,
        /// The child's goal.
        goal: String,
        /// Grants asked for it.
        grants: Vec<GrantSpec>,
        /// The budget asked for it.
        budget: Option<Budget>,
    },
}

/// Who is calling, as far as a call's meaning depends on it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The workspace file tools are confined to.
    pub workspace: &'a Workspace,
    /// The caller's parent (`send` to `"parent"`).
    pub parent: Option<Pid>,
}

/// What the tools see of the process calling them.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The calling process (`None` outside a scheduler: tests, tools run by hand).
    pub pid: Option<Pid>,
    /// The workspace file tools are confined to.
    pub workspace: Workspace,
    /// The time of the call.
    pub now: Timestamp,
    /// Where programs run (`shell`).
    pub sandbox: Sandbox,
    /// Fires when the call must stop (the process was killed, the scheduler is stopping).
    pub cancel: Cancel,
    /// What is left of the process's `wall_time` budget, if it has one: no
    /// program runs longer.
    pub time_left: Option<Duration>,
    /// What each program may use (the image's `[limits]`); CPU time is
    /// further bounded by the call's time limit.
    pub limits: Limits,
    /// What the capability check allowed this call ([`crate::ToolCall::needs`]). A
    /// file tool acts only on the file a need names: a path that leads
    /// elsewhere by the time it is opened (a directory swapped for a
    /// symlink meanwhile) is refused, not followed.
    pub allowed: Vec<Need>,
    /// What decides a program's connections, if the process holds `net:`
    /// grants; without it, programs have no network at all.
    pub net: Option<Arc<dyn NetGate>>,
    /// The operator's headers for `http_request`, by host (values read at send time).
    pub http: Arc<OperatorHeaders>,
}

impl ToolContext {
    /// A context in `workspace` at `now` with no sandbox (programs are
    /// refused), no cancellation, no wall-time budget, and nothing allowed
    /// yet (set [`ToolContext::allowed`] to what the check allowed).
    pub fn new(workspace: Workspace, now: Timestamp) -> ToolContext {
        ToolContext {
            pid: None,
            workspace,
            now,
            sandbox: Sandbox::unavailable("no sandbox was configured"),
            cancel: Cancel::new(),
            time_left: None,
            limits: Limits::default(),
            allowed: Vec::new(),
            net: None,
            http: Arc::new(OperatorHeaders::default()),
        }
    }

    /// Walks `path` beneath the workspace for a file tool that needs
    /// `right` on it; refuses unless it leads to a file the check allowed.
    pub(crate) fn open(&self, path: &str, right: Right) -> Result<Opened, String> {
        let opened = self.workspace.open(path).map_err(|e| e.to_string())?;
        let resource = self.workspace.resource(&opened.path);
        if !self.allowed.iter().any(|n| n.resource == resource && n.right == right) {
            return Err(format!(
                "path `{path}` changed after it was checked (it now leads to `{}`): nothing was done",
                self.workspace.display(&opened.path)
            ));
        }
        Ok(opened)
    }
}

/// Why a call was refused before any grant was consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The arguments do not name anything usable: a model-visible error.
    Invalid(String),
    /// The call reaches something no process may: an audited denial of `need`.
    Confined {
        /// What was asked for, as given (e.g. `read fs:../secret`).
        need: Need,
        /// Why, one line naming the path.
        reason: String,
    },
}

/// A tool's result as the model will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutput {
    /// It worked; the text is the result.
    Ok(String),
    /// It failed in a way the model should hear about (missing file, not a directory).
    Error(String),
}
