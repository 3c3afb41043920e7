//! `delete_file(path)`: remove a file from the workspace.

use libos_kernel::caps::Right;
use rustix::fs::{AtFlags, FileType};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::{ToolContext, ToolOutput};
use crate::spec::ToolSpec;
use crate::workspace::io_reason;

/// Arguments of `delete_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteFileArgs {
    /// Path relative to the workspace.
    pub path: String,
}

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "delete_file",
        description: "Delete a file in your workspace (not a directory).",
        parameters: json!({
            "type": "object",
            "properties": {"path": {"type": "string", "description": "File path, relative to the workspace."}},
            "required": ["path"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn run(a: &DeleteFileArgs, ctx: &ToolContext) -> ToolOutput {
    let opened = match ctx.open(&a.path, Right::Delete) {
        Ok(o) => o,
        Err(e) => return ToolOutput::Error(e),
    };
    let is_dir = || ToolOutput::Error(format!("`{}` is a directory; only files can be deleted", a.path));
    let name = match (&opened.found, &opened.name) {
        (None, _) => return ToolOutput::Error(format!("cannot delete `{}`: no such file or directory", a.path)),
        (Some(f), _) if f.kind == FileType::Directory => return is_dir(),
        (Some(_), Some(name)) => name,
        (Some(_), None) => return is_dir(),
    };
    // The name in the directory handle the walk holds; unlinking a name
    // that became a directory meanwhile fails rather than removing it.
    match rustix::fs::unlinkat(&opened.dir, name.as_os_str(), AtFlags::empty()) {
        Ok(()) => ToolOutput::Ok(format!("deleted `{}`", ctx.workspace.display(&opened.path))),
        Err(e) => ToolOutput::Error(format!("cannot delete `{}`: {}", a.path, io_reason(&e.into()))),
    }
}
