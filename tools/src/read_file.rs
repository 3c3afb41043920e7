//! `read_file(path)`: read a text file in the workspace.

use std::io::Read;

use libos_kernel::caps::Right;
use rustix::fs::{FileType, OFlags};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::{ToolContext, ToolOutput};
use crate::spec::ToolSpec;
use crate::workspace::io_reason;

/// Most bytes returned; longer files are cut with a notice.
pub const MAX_READ_BYTES: usize = 256 * 1024;

/// Arguments of `read_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// Path relative to the workspace.
    pub path: String,
}

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "read_file",
        description: "Read a UTF-8 text file in your workspace. Paths are relative to the workspace root.",
        parameters: json!({
            "type": "object",
            "properties": {"path": {"type": "string", "description": "File path, relative to the workspace."}},
            "required": ["path"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn run(a: &ReadFileArgs, ctx: &ToolContext) -> ToolOutput {
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
    let mut file = match opened.reopen(OFlags::RDONLY) {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => return ToolOutput::Error(format!("cannot read `{}`: {}", a.path, io_reason(&e))),
    };
    let mut bytes = Vec::new();
    let limit = MAX_READ_BYTES as u64 + 1;
    if let Err(e) = (&mut file).take(limit).read_to_end(&mut bytes) {
        return ToolOutput::Error(format!("cannot read `{}`: {}", a.path, io_reason(&e)));
    }
    let cut = bytes.len() > MAX_READ_BYTES;
    bytes.truncate(MAX_READ_BYTES);
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
