//! Programs started on behalf of agents run here, where the host's kernel
//! confines them: a Landlock domain (the workspace read-write, the system
//! read-only, libos's own files and everything else out of reach), new
//! user, PID, mount and network namespaces (no network unless granted, and
//! then only through a proxy that asks the grants about each destination, no
//! other process visible, nothing left running after the call), resource
//! limits, a cleared environment and no inherited descriptors.
//!
//! This crate decides nothing about grants (the kernel and runtime do) and
//! knows nothing of processes or stores: it takes a [`Policy`] and a
//! program, and runs it. Linux only.
//!
//! Modules, in reading order:
//! - [`policy`]: what a program may reach, and the carving of protected
//!   paths out of allowed trees into Landlock rules.
//! - [`net`]: the gate that decides each destination, and which addresses
//!   a granted host may lead to.
//! - [`proxy`]: the HTTP proxy, in the scheduler, that is a program's only
//!   way out when its process holds `net:` grants.
//! - [`run`]: the scheduler's side: finding and probing the launcher, a run
//!   with its time limit, cancellation and bounded output.
//! - [`spawn`]: an interactive program (an MCP server): piped standard
//!   input and output, no time limit, killed with its handle.
//! - [`launch`]: the launcher's two stages, in a fresh process.

pub mod launch;
pub mod net;
pub mod policy;
pub mod proxy;
pub mod run;
pub mod spawn;

pub use net::{NetGate, Reach, Use};
pub use policy::{Limits, Network, Policy};
pub use proxy::Attempt;
pub use run::{Cancel, CancelOnDrop, Captured, Cmd, End, Launcher, Output, Sandbox, SandboxError};
pub use spawn::{Interactive, Spawned};
