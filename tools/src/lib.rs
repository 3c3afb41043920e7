//! The syscall-like tools agents call, as one registry.
//!
//! A model's `{name, arguments}` is parsed exactly once, in [`call`], into a
//! typed [`ToolCall`]; everything after works on typed arguments. Every tool
//! is an [`Entry`] of the [`Registry`]: the built-ins, one [`Tool`] type per
//! file in [`builtin`], whose schemas are generated from their arguments
//! types; and dynamic tools ([`DynamicTool`]: MCP, operator-defined, ...),
//! whose schemas come from their source and whose arguments are validated
//! against them. This crate does not decide whether a call is allowed (the
//! kernel and runtime do) and does not commit anything: it parses,
//! describes and runs.
//!
//! Modules, in reading order:
//! - [`registry`]: tool names, entries, the registry and a process's [`ToolSet`].
//! - [`call`]: the typed call, the parse boundary and its rejections.
//! - [`tool`]: what a built-in is ([`Tool`]) and the schema generation.
//! - [`dynamic`]: dynamic tools, their handlers ([`ToolHandler`]) and annotations.
//! - [`dispatch`]: the caller, the context tools run with, how a call commits, results.
//! - [`http`]: the operator's headers `http_request` adds for a host (secrets read at send time).
//! - [`workspace`]: confinement of paths to the process workspace: walked beneath a
//!   handle on its root, so file tools open what they check.
//! - [`spec`]: the schema sent to models.
//! - [`builtin`]: one module per built-in tool, and the list the registry is built from.
//! - [`command`]: operator-defined command tools (`[tools.NAME]`), dynamic entries run like `shell`.

pub mod builtin;
pub mod call;
pub mod command;
pub mod dispatch;
pub mod dynamic;
pub mod http;
pub mod registry;
pub mod spec;
pub mod tool;
pub mod workspace;

pub use call::{MAX_ARGS_BYTES, RejectReason, ToolCall};
pub use command::{CommandSpec, command_tool};
pub use dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
pub use dynamic::{DynamicTool, Invocation, ToolAnnotations, ToolFuture, ToolHandler};
pub use http::{HostHeaders, OperatorHeader, OperatorHeaders};
pub use registry::{Entry, Registry, RegistryError, ServerTools, ToolName, ToolSet};
pub use spec::ToolSpec;
pub use tool::Tool;
pub use workspace::{Current, PathError, Peek, Workspace};
