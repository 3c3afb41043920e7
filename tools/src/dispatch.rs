//! What a validated call needs from the capability table, and running it.
//!
//! Calls come in kinds, because they commit differently:
//! - `exit` ends the process with the quantum's commit;
//! - local calls (`now`, `read_file`, `list_dir`) have no effect outside the
//!   process and may safely run again after a crash;
//! - external calls (`write_file`, `delete_file`, `shell`) change the world, so the
//!   runtime writes an intent record before running them and never re-runs
//!   one whose end was not recorded;
//! - kernel calls (messages, children, timers, questions) are a change of
//!   kernel state, executed by the kernel inside the commit;
//! - `spawn` is a kernel call whose image the runtime resolves first.

use std::sync::Arc;
use std::time::Duration;

use libos_kernel::budget::Budget;
use libos_kernel::caps::{GrantSpec, Resource, ResourceKind, Right};
use libos_kernel::syscall::{Kinship, Need, Syscall};
use libos_kernel::{Pid, Timestamp};
use libos_sandbox::{Cancel, Limits, NetGate, Sandbox};

use crate::call::ToolCall;
use crate::workspace::{Opened, PathError, Workspace};
use crate::{delete_file, list_dir, now, read_file, shell, write_file};

/// How a call must be committed.
#[derive(Debug, Clone, PartialEq)]
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
    /// What the capability check allowed this call ([`ToolCall::needs`]). A
    /// file tool acts only on the file a need names: a path that leads
    /// elsewhere by the time it is opened (a directory swapped for a
    /// symlink meanwhile) is refused, not followed.
    pub allowed: Vec<Need>,
    /// What decides a program's connections, if the process holds `net:`
    /// grants; without it, programs have no network at all.
    pub net: Option<Arc<dyn NetGate>>,
}

impl ToolContext {
    /// A context in `workspace` at `now` with no sandbox (programs are
    /// refused), no cancellation, no wall-time budget, and nothing allowed
    /// yet (set [`ToolContext::allowed`] to what the check allowed).
    pub fn new(workspace: Workspace, now: Timestamp) -> ToolContext {
        ToolContext {
            workspace,
            now,
            sandbox: Sandbox::unavailable("no sandbox was configured"),
            cancel: Cancel::new(),
            time_left: None,
            limits: Limits::default(),
            allowed: Vec::new(),
            net: None,
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

fn pid(n: i64) -> Result<Pid, String> {
    n.to_string().parse()
}

impl ToolCall {
    /// The (resource, right) pairs this call touches. File paths are
    /// resolved first, beneath the workspace and the way the tool will open
    /// them (symlinks and `..` included), so the check is on the real file;
    /// [`ToolCall::run`] then acts only on a file these name
    /// ([`ToolContext::allowed`]). A path that resolves outside the
    /// workspace (or into libos's own files) is refused as
    /// [`Refusal::Confined`], a denial no grant can lift; one that cannot be
    /// resolved is [`Refusal::Invalid`].
    pub fn needs(&self, caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        let workspace = caller.workspace;
        let fs = |path: &str, right: Right| -> Result<Vec<Need>, Refusal> {
            match workspace.resolve(path) {
                Ok(resolved) => Ok(vec![Need::grant(workspace.resource(&resolved), right)]),
                Err(PathError::Invalid(reason)) => Err(Refusal::Invalid(reason)),
                Err(PathError::Confined(reason)) => {
                    Err(Refusal::Confined { need: Need::grant(Resource::new(ResourceKind::Fs, path), right), reason })
                }
            }
        };
        Ok(match self {
            ToolCall::Exit(_)
            | ToolCall::Now(_)
            | ToolCall::Children(_)
            | ToolCall::Wait(_)
            | ToolCall::Read(_)
            | ToolCall::Receive(_)
            | ToolCall::Sleep(_) => Vec::new(),
            ToolCall::ReadFile(a) => fs(&a.path, Right::Read)?,
            ToolCall::ListDir(a) => fs(&a.path, Right::Read)?,
            ToolCall::WriteFile(a) => fs(&a.path, Right::Write)?,
            ToolCall::DeleteFile(a) => fs(&a.path, Right::Delete)?,
            ToolCall::Spawn(a) => vec![
                Need::grant(Resource::new(ResourceKind::Spawn, ""), Right::Spawn),
                Need::grant(Resource::new(ResourceKind::Image, a.image.clone()), Right::Read),
            ],
            ToolCall::Signal(a) => {
                let target = pid(a.pid).map_err(Refusal::Invalid)?;
                vec![Need {
                    resource: Resource::new(ResourceKind::Process, target.to_string()),
                    right: Right::Signal,
                    kinship: Kinship::Child(target),
                }]
            }
            ToolCall::Send(a) => {
                let to = a.to.resolve(caller.parent).map_err(Refusal::Invalid)?;
                vec![Need {
                    resource: Resource::new(ResourceKind::Message, to.to_string()),
                    right: Right::Send,
                    kinship: Kinship::ParentOrChild(to),
                }]
            }
            ToolCall::AskHuman(_) => vec![Need::grant(Resource::new(ResourceKind::Human, "operator"), Right::Send)],
            // Own namespace and own view: the handles decide, in the kernel.
            ToolCall::MemoryWrite(_)
            | ToolCall::MemoryRead(_)
            | ToolCall::MemoryList(_)
            | ToolCall::MemoryShare(_)
            | ToolCall::MemoryPin(_)
            | ToolCall::MemoryUnpin(_) => Vec::new(),
            ToolCall::Shell(a) => a
                .argv
                .first()
                .map(|p| vec![Need::grant(Resource::new(ResourceKind::Shell, p.clone()), Right::Exec)])
                .unwrap_or_default(),
        })
    }

    /// How this call commits. Conversion errors cannot happen after
    /// [`ToolCall::parse`] validated the arguments, but are still returned
    /// as model-visible text rather than assumed away.
    pub fn dispatch(&self, caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(match self {
            ToolCall::Exit(a) => Dispatch::Exit { result: a.result.clone() },
            ToolCall::Now(_) | ToolCall::ReadFile(_) | ToolCall::ListDir(_) => Dispatch::Local,
            ToolCall::WriteFile(_) | ToolCall::DeleteFile(_) | ToolCall::Shell(_) => Dispatch::External,
            ToolCall::Spawn(a) => Dispatch::Spawn {
                image: a.image.clone(),
                goal: a.goal.clone(),
                grants: a.grants.iter().map(|g| g.to_spec()).collect::<Result<_, _>>()?,
                budget: a.budget()?,
            },
            ToolCall::Wait(a) => Dispatch::Kernel(Syscall::Wait { target: a.target()? }),
            ToolCall::Children(_) => Dispatch::Kernel(Syscall::Children),
            ToolCall::Signal(a) => Dispatch::Kernel(Syscall::Signal { pid: pid(a.pid)?, action: a.action()? }),
            ToolCall::Send(a) => Dispatch::Kernel(Syscall::Send(a.message(caller.parent)?)),
            ToolCall::Read(a) => Dispatch::Kernel(Syscall::Read { filter: a.filter()? }),
            ToolCall::Receive(a) => Dispatch::Kernel(Syscall::Receive { filter: a.filter()? }),
            ToolCall::Sleep(a) => Dispatch::Kernel(Syscall::Sleep { duration: a.duration()? }),
            ToolCall::AskHuman(a) => Dispatch::Kernel(Syscall::AskHuman { question: a.question.clone() }),
            ToolCall::MemoryWrite(a) => Dispatch::Kernel(Syscall::MemoryWrite {
                name: a.name.clone(),
                content: a.content.clone(),
                kind: a.kind.clone().unwrap_or_else(|| "text".to_string()),
            }),
            ToolCall::MemoryRead(a) => Dispatch::Kernel(Syscall::MemoryRead { target: a.target()? }),
            ToolCall::MemoryList(a) => Dispatch::Kernel(Syscall::MemoryList { namespace: a.namespace.clone() }),
            ToolCall::MemoryShare(a) => Dispatch::Kernel(Syscall::MemoryShare {
                oid: crate::memory::oid(a.oid)?,
                pid: pid(a.pid)?,
                rights: a.rights()?,
            }),
            ToolCall::MemoryPin(a) => {
                Dispatch::Kernel(Syscall::MemoryPin { oid: crate::memory::oid(a.oid)?, pinned: true })
            }
            ToolCall::MemoryUnpin(a) => {
                Dispatch::Kernel(Syscall::MemoryPin { oid: crate::memory::oid(a.oid)?, pinned: false })
            }
        })
    }

    /// Runs a local or external call. Kernel calls return a note that they
    /// are committed by the kernel; the runtime never runs them here.
    pub fn run(&self, ctx: &ToolContext) -> ToolOutput {
        match self {
            ToolCall::Now(_) => now::run(ctx),
            ToolCall::ReadFile(a) => read_file::run(a, ctx),
            ToolCall::ListDir(a) => list_dir::run(a, ctx),
            ToolCall::WriteFile(a) => write_file::run(a, ctx),
            ToolCall::DeleteFile(a) => delete_file::run(a, ctx),
            ToolCall::Shell(a) => shell::run(a, ctx),
            ToolCall::Exit(_)
            | ToolCall::Spawn(_)
            | ToolCall::Wait(_)
            | ToolCall::Children(_)
            | ToolCall::Signal(_)
            | ToolCall::Send(_)
            | ToolCall::Read(_)
            | ToolCall::Receive(_)
            | ToolCall::Sleep(_)
            | ToolCall::AskHuman(_)
            | ToolCall::MemoryWrite(_)
            | ToolCall::MemoryRead(_)
            | ToolCall::MemoryList(_)
            | ToolCall::MemoryShare(_)
            | ToolCall::MemoryPin(_)
            | ToolCall::MemoryUnpin(_) => ToolOutput::Error(format!("`{}` is committed by the kernel", self.name())),
        }
    }
}
