//! `delete_file(path)`: remove a file from the workspace.

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
    let path = match ctx.workspace.resolve(&a.path) {
        Ok(p) => p,
        Err(e) => return ToolOutput::Error(e.to_string()),
    };
    if path.is_dir() {
        return ToolOutput::Error(format!("`{}` is a directory; only files can be deleted", a.path));
    }
    match std::fs::remove_file(&path) {
        Ok(()) => ToolOutput::Ok(format!("deleted `{}`", ctx.workspace.display(&path))),
        Err(e) => ToolOutput::Error(format!("cannot delete `{}`: {}", a.path, io_reason(&e))),
    }
}
