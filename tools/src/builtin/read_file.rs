//! `read_file(path)`: read a text file in the workspace.

use libos_core::caps::Right;
use rustix::fs::FileType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::fs_need;
use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
use crate::tool::Tool;
use crate::workspace::io_reason;
use libos_core::syscall::Need;

/// Most bytes returned; longer files are cut with a notice.
pub const MAX_READ_BYTES: usize = 256 * 1024;

/// Arguments of `read_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// File path, relative to the workspace.
    pub path: String,
}

fn run_it(a: &ReadFileArgs, ctx: &ToolContext) -> ToolOutput {
    let opened = match ctx.open(&a.path, Right::Read) {
        Ok(o) => o,
        Err(e) => return ToolOutput::Error(e),
    };
    match opened.found.as_ref().map(|f| f.kind) {
        None => return ToolOutput::Error(format!("cannot read `{}`: no such file or directory", a.path)),
        Some(FileType::Directory) => return ToolOutput::Error(format!("`{}` is a directory; use list_dir", a.path)),
        Some(FileType::RegularFile) => {}
        // A FIFO would block, a device read forever.
        Some(_) => return ToolOutput::Error(format!("`{}` is not a regular file", a.path)),
    }
    let (bytes, cut) = match opened.read_prefix(MAX_READ_BYTES) {
        Ok(read) => read,
        Err(e) => return ToolOutput::Error(format!("cannot read `{}`: {}", a.path, io_reason(&e))),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        // A cut may split a character; only the tail can be invalid then.
        Err(e) if cut && e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
        Err(_) => return ToolOutput::Error(format!("`{}` is not a UTF-8 text file", a.path)),
    };
    if cut {
        ToolOutput::Ok(format!("{text}\n[truncated: only the first {MAX_READ_BYTES} bytes are shown]"))
    } else {
        ToolOutput::Ok(text)
    }
}

/// `read_file`.
pub struct ReadFile;

impl Tool for ReadFile {
    type Args = ReadFileArgs;
    const NAME: &'static str = "read_file";
    const DESCRIPTION: &'static str =
        "Read a UTF-8 text file in your workspace. Paths are relative to the workspace root.";

    fn needs(a: &ReadFileArgs, caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        fs_need(caller.workspace, &a.path, Right::Read)
    }

    fn dispatch(_: &ReadFileArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Local)
    }

    fn run(a: &ReadFileArgs, ctx: &ToolContext) -> ToolOutput {
        run_it(a, ctx)
    }
}
