//! The syscall-like tools agents call.
//!
//! A model's `{name, arguments}` is parsed exactly once, in [`call`], into a
//! typed [`ToolCall`]; everything after works on typed arguments. Each tool
//! lives in its own module with its arguments struct, its JSON schema and its
//! handler. This crate does not decide whether a call is allowed (the kernel
//! and runtime do) and does not commit anything: it parses, describes and runs.
//!
//! Modules, in reading order:
//! - [`call`]: tool names, the typed call, the parse boundary and its rejections.
//! - [`dispatch`]: what a call needs from the capability table, how it commits, and running it.
//! - [`workspace`]: confinement of paths to the process workspace: walked beneath a
//!   handle on its root, so file tools open what they check.
//! - [`spec`]: the schema sent to models.
//! - one module per tool: [`exit`], [`now`], [`read_file`], [`list_dir`],
//!   [`write_file`], [`delete_file`], [`shell`]; kernel calls by family: [`procs`]
//!   (spawn, wait, children, signal), [`msgs`] (send, read, receive, sleep, ask_human)
//!   and [`memory`] (memory_write, memory_read, memory_list, memory_share, memory_pin, memory_unpin).

pub mod call;
pub mod delete_file;
pub mod dispatch;
pub mod exit;
pub mod list_dir;
pub mod memory;
pub mod msgs;
pub mod now;
pub mod procs;
pub mod read_file;
pub mod shell;
pub mod spec;
pub mod workspace;
pub mod write_file;

pub use call::{MAX_ARGS_BYTES, RejectReason, ToolCall, ToolName};
pub use dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
pub use spec::ToolSpec;
pub use workspace::{PathError, Workspace};
