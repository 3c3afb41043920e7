//! The one string-to-type boundary: a model's `{name, arguments}` becomes a
//! typed [`ToolCall`] here, or a [`RejectReason`] the model is shown. No
//! untyped JSON travels past this module.

use std::fmt;

use serde::de::DeserializeOwned;

use crate::delete_file::DeleteFileArgs;
use crate::memory::{MemoryListArgs, MemoryPinArgs, MemoryReadArgs, MemoryShareArgs, MemoryWriteArgs};
use crate::msgs::{AskHumanArgs, FilterArgs, SendArgs, SleepArgs};
use crate::procs::{ChildrenArgs, SignalArgs, SpawnArgs, WaitArgs};
use crate::spec::ToolSpec;
use crate::{delete_file, exit, list_dir, memory, msgs, now, procs, read_file, shell, write_file};

/// Largest arguments text accepted from a model, in bytes.
pub const MAX_ARGS_BYTES: usize = 1024 * 1024;

/// Every tool libos knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ToolName {
    /// `exit(result)`.
    Exit,
    /// `now()`.
    Now,
    /// `read_file(path)`.
    ReadFile,
    /// `list_dir(path)`.
    ListDir,
    /// `write_file(path, content)`.
    WriteFile,
    /// `delete_file(path)`.
    DeleteFile,
    /// `spawn(image, goal, grants)`.
    Spawn,
    /// `wait(pid | "any")`.
    Wait,
    /// `children()`.
    Children,
    /// `signal(pid, action)`.
    Signal,
    /// `send(to, body, ...)`.
    Send,
    /// `read(filter)`.
    Read,
    /// `receive(filter)`.
    Receive,
    /// `sleep(seconds)`.
    Sleep,
    /// `ask_human(question)`.
    AskHuman,
    /// `memory_write(name, content, kind)`.
    MemoryWrite,
    /// `memory_read(object)`.
    MemoryRead,
    /// `memory_list(namespace)`.
    MemoryList,
    /// `memory_share(oid, pid, rights)`.
    MemoryShare,
    /// `memory_pin(oid)`.
    MemoryPin,
    /// `memory_unpin(oid)`.
    MemoryUnpin,
    /// `shell(argv, timeout_s)`.
    Shell,
}

impl ToolName {
    /// Every tool, in the order schemas are presented.
    pub const ALL: [ToolName; 22] = [
        ToolName::Exit,
        ToolName::Now,
        ToolName::ReadFile,
        ToolName::ListDir,
        ToolName::WriteFile,
        ToolName::DeleteFile,
        ToolName::Spawn,
        ToolName::Wait,
        ToolName::Children,
        ToolName::Signal,
        ToolName::Send,
        ToolName::Read,
        ToolName::Receive,
        ToolName::Sleep,
        ToolName::AskHuman,
        ToolName::MemoryWrite,
        ToolName::MemoryRead,
        ToolName::MemoryList,
        ToolName::MemoryShare,
        ToolName::MemoryPin,
        ToolName::MemoryUnpin,
        ToolName::Shell,
    ];

    /// The tool's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::Exit => "exit",
            ToolName::Now => "now",
            ToolName::ReadFile => "read_file",
            ToolName::ListDir => "list_dir",
            ToolName::WriteFile => "write_file",
            ToolName::DeleteFile => "delete_file",
            ToolName::Spawn => "spawn",
            ToolName::Wait => "wait",
            ToolName::Children => "children",
            ToolName::Signal => "signal",
            ToolName::Send => "send",
            ToolName::Read => "read",
            ToolName::Receive => "receive",
            ToolName::Sleep => "sleep",
            ToolName::AskHuman => "ask_human",
            ToolName::MemoryWrite => "memory_write",
            ToolName::MemoryRead => "memory_read",
            ToolName::MemoryList => "memory_list",
            ToolName::MemoryShare => "memory_share",
            ToolName::MemoryPin => "memory_pin",
            ToolName::MemoryUnpin => "memory_unpin",
            ToolName::Shell => "shell",
        }
    }

    /// Looks a name up.
    pub fn parse(name: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Name, description and argument schema.
    pub fn spec(self) -> ToolSpec {
        match self {
            ToolName::Exit => exit::spec(),
            ToolName::Now => now::spec(),
            ToolName::ReadFile => read_file::spec(),
            ToolName::ListDir => list_dir::spec(),
            ToolName::WriteFile => write_file::spec(),
            ToolName::DeleteFile => delete_file::spec(),
            ToolName::Spawn => procs::spawn_spec(),
            ToolName::Wait => procs::wait_spec(),
            ToolName::Children => procs::children_spec(),
            ToolName::Signal => procs::signal_spec(),
            ToolName::Send => msgs::send_spec(),
            ToolName::Read => msgs::read_spec(),
            ToolName::Receive => msgs::receive_spec(),
            ToolName::Sleep => msgs::sleep_spec(),
            ToolName::AskHuman => msgs::ask_human_spec(),
            ToolName::MemoryWrite => memory::write_spec(),
            ToolName::MemoryRead => memory::read_spec(),
            ToolName::MemoryList => memory::list_spec(),
            ToolName::MemoryShare => memory::share_spec(),
            ToolName::MemoryPin => memory::pin_spec(),
            ToolName::MemoryUnpin => memory::unpin_spec(),
            ToolName::Shell => shell::spec(),
        }
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated tool call with typed arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolCall {
    /// End the process with a result.
    Exit(exit::ExitArgs),
    /// Current time.
    Now(now::NowArgs),
    /// Read a workspace file.
    ReadFile(read_file::ReadFileArgs),
    /// List a workspace directory.
    ListDir(list_dir::ListDirArgs),
    /// Write a workspace file.
    WriteFile(write_file::WriteFileArgs),
    /// Delete a workspace file.
    DeleteFile(DeleteFileArgs),
    /// Start a child.
    Spawn(SpawnArgs),
    /// Wait for a child.
    Wait(WaitArgs),
    /// List children.
    Children(ChildrenArgs),
    /// Signal a child.
    Signal(SignalArgs),
    /// Send a message.
    Send(SendArgs),
    /// Take messages without waiting.
    Read(FilterArgs),
    /// Take a message, waiting for one.
    Receive(FilterArgs),
    /// Wait a while.
    Sleep(SleepArgs),
    /// Ask the operator.
    AskHuman(AskHumanArgs),
    /// Write an object.
    MemoryWrite(MemoryWriteArgs),
    /// Read an object.
    MemoryRead(MemoryReadArgs),
    /// List the view.
    MemoryList(MemoryListArgs),
    /// Share an object with a child.
    MemoryShare(MemoryShareArgs),
    /// Pin an object.
    MemoryPin(MemoryPinArgs),
    /// Unpin an object.
    MemoryUnpin(MemoryPinArgs),
    /// Run a program.
    Shell(shell::ShellArgs),
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

fn names(allowed: &[ToolName]) -> String {
    allowed.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
}

fn typed<T: DeserializeOwned>(tool: ToolName, value: serde_json::Value) -> Result<T, RejectReason> {
    serde_json::from_value(value).map_err(|e| RejectReason::InvalidArgs {
        tool: tool.as_str().to_string(),
        reason: one_line(&e.to_string(), 300),
    })
}

impl ToolCall {
    /// Parses a call from a model. `arguments` is the JSON text the model sent
    /// (empty means `{}`); `allowed` is the process's tool table.
    pub fn parse(name: &str, arguments: &str, allowed: &[ToolName]) -> Result<ToolCall, RejectReason> {
        let tool = ToolName::parse(name)
            .filter(|t| allowed.contains(t))
            .ok_or_else(|| RejectReason::UnknownTool { name: one_line(name, 64), available: names(allowed) })?;
        let label = tool.as_str().to_string();
        if arguments.len() > MAX_ARGS_BYTES {
            return Err(RejectReason::TooLarge { tool: label, bytes: arguments.len(), limit: MAX_ARGS_BYTES });
        }
        let text = if arguments.trim().is_empty() { "{}" } else { arguments };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| RejectReason::InvalidJson { tool: label.clone(), reason: one_line(&e.to_string(), 300) })?;
        if !value.is_object() {
            return Err(RejectReason::InvalidJson { tool: label, reason: "expected an object".to_string() });
        }
        let call = match tool {
            ToolName::Exit => ToolCall::Exit(typed(tool, value)?),
            ToolName::Now => ToolCall::Now(typed(tool, value)?),
            ToolName::ReadFile => ToolCall::ReadFile(typed(tool, value)?),
            ToolName::ListDir => ToolCall::ListDir(typed(tool, value)?),
            ToolName::WriteFile => ToolCall::WriteFile(typed(tool, value)?),
            ToolName::DeleteFile => ToolCall::DeleteFile(typed(tool, value)?),
            ToolName::Spawn => ToolCall::Spawn(typed(tool, value)?),
            ToolName::Wait => ToolCall::Wait(typed(tool, value)?),
            ToolName::Children => ToolCall::Children(typed(tool, value)?),
            ToolName::Signal => ToolCall::Signal(typed(tool, value)?),
            ToolName::Send => ToolCall::Send(typed(tool, value)?),
            ToolName::Read => ToolCall::Read(typed(tool, value)?),
            ToolName::Receive => ToolCall::Receive(typed(tool, value)?),
            ToolName::Sleep => ToolCall::Sleep(typed(tool, value)?),
            ToolName::AskHuman => ToolCall::AskHuman(typed(tool, value)?),
            ToolName::MemoryWrite => ToolCall::MemoryWrite(typed(tool, value)?),
            ToolName::MemoryRead => ToolCall::MemoryRead(typed(tool, value)?),
            ToolName::MemoryList => ToolCall::MemoryList(typed(tool, value)?),
            ToolName::MemoryShare => ToolCall::MemoryShare(typed(tool, value)?),
            ToolName::MemoryPin => ToolCall::MemoryPin(typed(tool, value)?),
            ToolName::MemoryUnpin => ToolCall::MemoryUnpin(typed(tool, value)?),
            ToolName::Shell => ToolCall::Shell(typed(tool, value)?),
        };
        call.validate()?;
        Ok(call)
    }

    fn validate(&self) -> Result<(), RejectReason> {
        let invalid = |reason: String| RejectReason::InvalidArgs {
            tool: self.name().as_str().to_string(),
            reason: one_line(&reason, 300),
        };
        match self {
            ToolCall::Exit(a) => exit::validate(a).map_err(invalid),
            ToolCall::Spawn(a) => {
                if a.goal.trim().is_empty() {
                    return Err(invalid("goal is empty".to_string()));
                }
                a.budget().map_err(invalid)?;
                a.grants.iter().try_for_each(|g| g.to_spec().map(drop)).map_err(invalid)
            }
            ToolCall::Wait(a) => a.target().map(drop).map_err(invalid),
            ToolCall::Signal(a) => {
                a.action().map_err(invalid)?;
                a.pid.to_string().parse::<libos_kernel::Pid>().map(drop).map_err(invalid)
            }
            // `parent` resolves at dispatch; here only the shape is checked.
            ToolCall::Send(a) => a.message(Some(libos_kernel::Pid(1))).map(drop).map_err(invalid),
            ToolCall::Read(a) | ToolCall::Receive(a) => a.filter().map(drop).map_err(invalid),
            ToolCall::Sleep(a) => a.duration().map(drop).map_err(invalid),
            ToolCall::AskHuman(a) if a.question.trim().is_empty() => Err(invalid("question is empty".to_string())),
            ToolCall::MemoryWrite(a) => libos_kernel::memory::check_name(&a.name).map_err(invalid),
            ToolCall::MemoryRead(a) => a.target().map(drop).map_err(invalid),
            ToolCall::MemoryShare(a) => {
                a.rights().map_err(invalid)?;
                memory::oid(a.oid).map_err(invalid)?;
                a.pid.to_string().parse::<libos_kernel::Pid>().map(drop).map_err(invalid)
            }
            ToolCall::MemoryPin(a) | ToolCall::MemoryUnpin(a) => memory::oid(a.oid).map(drop).map_err(invalid),
            ToolCall::Shell(a) => a.validate().map_err(invalid),
            ToolCall::Now(_)
            | ToolCall::ReadFile(_)
            | ToolCall::ListDir(_)
            | ToolCall::WriteFile(_)
            | ToolCall::DeleteFile(_)
            | ToolCall::Children(_)
            | ToolCall::AskHuman(_)
            | ToolCall::MemoryList(_) => Ok(()),
        }
    }

    /// Which tool.
    pub fn name(&self) -> ToolName {
        match self {
            ToolCall::Exit(_) => ToolName::Exit,
            ToolCall::Now(_) => ToolName::Now,
            ToolCall::ReadFile(_) => ToolName::ReadFile,
            ToolCall::ListDir(_) => ToolName::ListDir,
            ToolCall::WriteFile(_) => ToolName::WriteFile,
            ToolCall::DeleteFile(_) => ToolName::DeleteFile,
            ToolCall::Spawn(_) => ToolName::Spawn,
            ToolCall::Wait(_) => ToolName::Wait,
            ToolCall::Children(_) => ToolName::Children,
            ToolCall::Signal(_) => ToolName::Signal,
            ToolCall::Send(_) => ToolName::Send,
            ToolCall::Read(_) => ToolName::Read,
            ToolCall::Receive(_) => ToolName::Receive,
            ToolCall::Sleep(_) => ToolName::Sleep,
            ToolCall::AskHuman(_) => ToolName::AskHuman,
            ToolCall::MemoryWrite(_) => ToolName::MemoryWrite,
            ToolCall::MemoryRead(_) => ToolName::MemoryRead,
            ToolCall::MemoryList(_) => ToolName::MemoryList,
            ToolCall::MemoryShare(_) => ToolName::MemoryShare,
            ToolCall::MemoryPin(_) => ToolName::MemoryPin,
            ToolCall::MemoryUnpin(_) => ToolName::MemoryUnpin,
            ToolCall::Shell(_) => ToolName::Shell,
        }
    }

    /// The arguments as canonical JSON (sorted keys, compact), for records and approvals.
    pub fn canonical_args(&self) -> String {
        let value = match self {
            ToolCall::Exit(a) => serde_json::to_value(a),
            ToolCall::Now(a) => serde_json::to_value(a),
            ToolCall::ReadFile(a) => serde_json::to_value(a),
            ToolCall::ListDir(a) => serde_json::to_value(a),
            ToolCall::WriteFile(a) => serde_json::to_value(a),
            ToolCall::DeleteFile(a) => serde_json::to_value(a),
            ToolCall::Spawn(a) => serde_json::to_value(a),
            ToolCall::Wait(a) => serde_json::to_value(a),
            ToolCall::Children(a) => serde_json::to_value(a),
            ToolCall::Signal(a) => serde_json::to_value(a),
            ToolCall::Send(a) => serde_json::to_value(a),
            ToolCall::Read(a) | ToolCall::Receive(a) => serde_json::to_value(a),
            ToolCall::Sleep(a) => serde_json::to_value(a),
            ToolCall::AskHuman(a) => serde_json::to_value(a),
            ToolCall::MemoryWrite(a) => serde_json::to_value(a),
            ToolCall::MemoryRead(a) => serde_json::to_value(a),
            ToolCall::MemoryList(a) => serde_json::to_value(a),
            ToolCall::MemoryShare(a) => serde_json::to_value(a),
            ToolCall::MemoryPin(a) | ToolCall::MemoryUnpin(a) => serde_json::to_value(a),
            ToolCall::Shell(a) => serde_json::to_value(a),
        };
        value.map(|v| v.to_string()).unwrap_or_else(|_| "{}".to_string())
    }
}

/// Model text quoted in a rejection: control characters escaped as every
/// renderer escapes them (`libos_kernel::text`), so the message stays one
/// line, and cut at `max` bytes.
fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 3);
    for c in s.chars() {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        libos_kernel::text::push_escaped(&mut out, c);
    }
    out
}
