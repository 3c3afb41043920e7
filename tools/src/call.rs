//! The one string-to-type boundary: a model's `{name, arguments}` becomes a
//! typed [`ToolCall`] here, or a [`RejectReason`] the model is shown. No
//! untyped JSON travels past this module: a built-in's arguments become
//! its typed arguments, a dynamic tool's are validated against its schema.

use std::fmt;
use std::sync::Arc;

use libos_core::syscall::Need;

use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
use crate::dynamic::ToolFuture;
use crate::registry::{Source, ToolName, ToolSet};
use crate::tool::{CallArgs, Tool, Typed};

/// Largest arguments text accepted from a model, in bytes.
pub const MAX_ARGS_BYTES: usize = 1024 * 1024;

/// A validated tool call: its tool's name and its typed arguments.
#[derive(Clone)]
pub struct ToolCall {
    name: ToolName,
    args: Arc<dyn CallArgs>,
}

impl fmt::Debug for ToolCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", self.name, self.args)
    }
}

/// Two calls are the same call when they name the same tool with the same
/// canonical arguments: what an approval binds to.
impl PartialEq for ToolCall {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.args.canonical() == other.args.canonical()
    }
}

/// Why a model's output could not become a tool call. Shown to the model in a repair turn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// No tool call at all.
    #[error("no tool call found: answer with exactly one call to one of the tools ({available})")]
    NoCall {
        /// Comma-separated tool names.
        available: String,
    },
    /// Text too full of broken JSON to search for a call in reasonable time.
    #[error(
        "the answer is {bytes} bytes of text with too many broken JSON fragments to find a call in: answer with \
         exactly one tool call"
    )]
    Unsearchable {
        /// The text's size.
        bytes: usize,
    },
    /// More than one.
    #[error("{count} tool calls in one turn: call exactly one tool per turn")]
    TooMany {
        /// How many there were.
        count: usize,
    },
    /// The name is not a tool libos has, or not one this process may use.
    #[error("unknown tool `{name}`: available tools are {available}")]
    UnknownTool {
        /// The name given.
        name: String,
        /// Comma-separated names the process may call.
        available: String,
    },
    /// Arguments over [`MAX_ARGS_BYTES`].
    #[error("arguments for `{tool}` are {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// The tool.
        tool: String,
        /// Size given.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON, or not an object.
    #[error("arguments for `{tool}` are not a JSON object: {reason}")]
    InvalidJson {
        /// The tool.
        tool: String,
        /// The parser's reason.
        reason: String,
    },
    /// JSON that does not fit the tool's schema.
    #[error("invalid arguments for `{tool}`: {reason}")]
    InvalidArgs {
        /// The tool.
        tool: String,
        /// What is wrong.
        reason: String,
    },
}

fn names(tools: &ToolSet) -> String {
    tools.names().iter().map(ToolName::as_str).collect::<Vec<_>>().join(", ")
}

impl ToolCall {
    /// Parses a call from a model. `arguments` is the JSON text the model sent
    /// (empty means `{}`); `tools` is the process's tool table.
    pub fn parse(name: &str, arguments: &str, tools: &ToolSet) -> Result<ToolCall, RejectReason> {
        let entry = tools
            .get(name)
            .ok_or_else(|| RejectReason::UnknownTool { name: one_line(name, 64), available: names(tools) })?;
        let label = entry.name().to_string();
        if arguments.len() > MAX_ARGS_BYTES {
            return Err(RejectReason::TooLarge { tool: label, bytes: arguments.len(), limit: MAX_ARGS_BYTES });
        }
        let text = if arguments.trim().is_empty() { "{}" } else { arguments };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| RejectReason::InvalidJson { tool: label.clone(), reason: one_line(&e.to_string(), 300) })?;
        if !value.is_object() {
            return Err(RejectReason::InvalidJson { tool: label, reason: "expected an object".to_string() });
        }
        let args = match &entry.source {
            Source::Builtin(parse) => parse(value),
            Source::Dynamic(tool) => tool.parse(value),
        }
        .map_err(|reason| RejectReason::InvalidArgs { tool: label, reason: one_line(&reason, 300) })?;
        Ok(ToolCall { name: entry.name().clone(), args })
    }

    /// A built-in's call made in code rather than parsed (tests, experiments).
    pub fn builtin<T: Tool>(args: T::Args) -> ToolCall {
        ToolCall { name: ToolName::builtin(T::NAME), args: Arc::new(Typed::<T>(args)) }
    }

    /// The tool's name.
    pub fn name(&self) -> &ToolName {
        &self.name
    }

    /// A built-in's typed arguments, if this is a call of `T`.
    pub fn args<T: Tool>(&self) -> Option<&T::Args> {
        let any: &dyn std::any::Any = self.args.as_ref();
        any.downcast_ref::<Typed<T>>().map(|t| &t.0)
    }

    /// The arguments as canonical JSON (sorted keys, compact), for records and approvals.
    pub fn canonical_args(&self) -> String {
        self.args.canonical()
    }

    /// The (resource, right) pairs this call touches. File paths are
    /// resolved first, beneath the workspace and the way the tool will open
    /// them (symlinks and `..` included), so the check is on the real file;
    /// [`ToolCall::run`] then acts only on a file these name
    /// ([`ToolContext::allowed`]). A path that resolves outside the
    /// workspace (or into libos's own files) is refused as
    /// [`Refusal::Confined`], a denial no grant can lift; one that cannot be
    /// resolved is [`Refusal::Invalid`].
    pub fn needs(&self, caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        self.args.needs(caller)
    }

    /// How this call commits.
    pub fn dispatch(&self, caller: Caller<'_>) -> Result<Dispatch, String> {
        self.args.dispatch(caller)
    }

    /// Runs a built-in's local or external call (blocking: effects may take
    /// long). Kernel calls return a note that they are committed by the
    /// kernel; the runtime never runs them here. A dynamic tool's call runs
    /// with [`ToolCall::run_dynamic`].
    pub fn run(&self, ctx: &ToolContext) -> ToolOutput {
        self.args.run(ctx)
    }

    /// A dynamic tool's call, run through its handler; `None` for a built-in.
    pub fn run_dynamic<'a>(&'a self, ctx: &'a ToolContext) -> Option<ToolFuture<'a>> {
        self.args.dynamic().map(|d| d.run(ctx))
    }

    /// What the called tool says of itself (a dynamic tool's annotations,
    /// when it gave any): display only, for the approval request.
    pub fn hints(&self) -> Option<&crate::dynamic::ToolAnnotations> {
        self.args.dynamic().map(|d| d.annotations()).filter(|h| !h.is_empty())
    }

    /// Whether this is a dynamic tool's call.
    pub fn is_dynamic(&self) -> bool {
        self.args.dynamic().is_some()
    }

    /// Whether a built-in's call reaches the world beyond this machine by
    /// itself ([`Tool::OPEN_WORLD`]): what a replay never sends again.
    pub fn is_open_world(&self) -> bool {
        self.args.open_world()
    }
}

/// Model text quoted in a rejection: control characters escaped as every
/// renderer escapes them (`libos_core::text`), so the message stays one
/// line, and cut at `max` bytes.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 3);
    for c in s.chars() {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        libos_core::text::push_escaped(&mut out, c);
    }
    out
}
