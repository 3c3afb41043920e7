//! `write_file(path, content)`: create or replace a file in the workspace.
//!
//! The write goes to a temporary file in the same directory and is renamed
//! over the target, so a crash leaves either the old content or the new one,
//! never a torn file.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::{ToolContext, ToolOutput};
use crate::spec::ToolSpec;
use crate::workspace::io_reason;

/// Arguments of `write_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// Path relative to the workspace; missing parent directories are created.
    pub path: String,
    /// The full new content.
    pub content: String,
}

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "write_file",
        description: "Create or replace a text file in your workspace with the given content. Missing parent \
                      directories are created.",
        parameters: json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the workspace."},
                "content": {"type": "string", "description": "The complete new content of the file."}
            },
            "required": ["path", "content"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn run(a: &WriteFileArgs, ctx: &ToolContext) -> ToolOutput {
    let path = match ctx.workspace.resolve(&a.path) {
        Ok(p) => p,
        Err(e) => return ToolOutput::Error(e.to_string()),
    };
    if path.is_dir() {
        return ToolOutput::Error(format!("`{}` is a directory", a.path));
    }
    let fail = |e: std::io::Error| ToolOutput::Error(format!("cannot write `{}`: {}", a.path, io_reason(&e)));
    let Some(dir) = path.parent() else {
        return ToolOutput::Error(format!("cannot write `{}`: no parent directory", a.path));
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(e);
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per write, so concurrent writes to one path never share a temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.libos-{}-{n}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(a.content.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return fail(e);
    }
    ToolOutput::Ok(format!("wrote {} bytes to `{}`", a.content.len(), ctx.workspace.display(&path)))
}
