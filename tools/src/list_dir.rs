//! `list_dir(path)`: list a directory in the workspace.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use libos_kernel::caps::Right;
use rustix::fs::{AtFlags, Dir, FileType, OFlags};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::{ToolContext, ToolOutput};
use crate::spec::ToolSpec;
use crate::workspace::{Identity, io_reason};

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
    let opened = match ctx.open(&a.path, Right::Read) {
        Ok(o) => o,
        Err(e) => return ToolOutput::Error(e),
    };
    match opened.found.as_ref().map(|f| f.kind) {
        None => return ToolOutput::Error(format!("cannot list `{}`: no such file or directory", a.path)),
        Some(FileType::Directory) => {}
        Some(_) => return ToolOutput::Error(format!("cannot list `{}`: not a directory", a.path)),
    }
    let fail = |e: std::io::Error| ToolOutput::Error(format!("cannot list `{}`: {}", a.path, io_reason(&e)));
    let dir = match opened.reopen(OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(e) => return fail(e),
    };
    let entries = match Dir::read_from(&dir) {
        Ok(e) => e,
        Err(e) => return fail(e.into()),
    };
    let protected = ctx.workspace.protected_identities();
    let mut lines = Vec::new();
    for entry in entries.flatten() {
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        // Entries are shown as what they are: a symlink is not followed.
        let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW);
        let hidden = stat.as_ref().is_ok_and(|s| protected.contains(&Identity::of(s)));
        if hidden || ctx.workspace.is_protected(&opened.path.join(name)) {
            continue;
        }
        let name = name.to_string_lossy();
        let line = match stat {
            Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory => format!("{name}/"),
            Ok(s) => format!("{name} ({} bytes)", s.st_size),
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
