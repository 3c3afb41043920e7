//! `list_dir(path)`: list a directory in the workspace.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::{ToolContext, ToolOutput};
use crate::spec::ToolSpec;
use crate::workspace::io_reason;

/// Most entries listed.
pub const MAX_ENTRIES: usize = 1000;

/// Arguments of `list_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDirArgs {
    /// Directory relative to the workspace (`.` for the root).
    pub path: String,
}

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "list_dir",
        description: "List a directory in your workspace: one entry per line, directories end with `/`, files show \
                      their size in bytes. Use `.` for the workspace root.",
        parameters: json!({
            "type": "object",
            "properties": {"path": {"type": "string", "description": "Directory path, relative to the workspace."}},
            "required": ["path"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn run(a: &ListDirArgs, ctx: &ToolContext) -> ToolOutput {
    let dir = match ctx.workspace.resolve(&a.path) {
        Ok(p) => p,
        Err(e) => return ToolOutput::Error(e.to_string()),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => return ToolOutput::Error(format!("cannot list `{}`: {}", a.path, io_reason(&e))),
    };
    let mut lines = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if ctx.workspace.is_protected(&path) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let line = match entry.metadata() {
            Ok(m) if m.is_dir() => format!("{name}/"),
            Ok(m) => format!("{name} ({} bytes)", m.len()),
            Err(_) => format!("{name} (unreadable)"),
        };
        lines.push(line);
    }
    lines.sort();
    let total = lines.len();
    if total == 0 {
        return ToolOutput::Ok(format!("`{}` is empty", a.path));
    }
    lines.truncate(MAX_ENTRIES);
    let mut out = lines.join("\n");
    if total > MAX_ENTRIES {
        out.push_str(&format!("\n[{} more entries not shown]", total - MAX_ENTRIES));
    }
    ToolOutput::Ok(out)
}
