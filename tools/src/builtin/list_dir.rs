//! `list_dir(path)`: list a directory in the workspace.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use libos_core::caps::Right;
use rustix::fs::{AtFlags, Dir, FileType, OFlags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::fs_need;
use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
use crate::tool::Tool;
use crate::workspace::{Identity, io_reason};
use libos_core::syscall::Need;

/// Most entries listed.
pub const MAX_ENTRIES: usize = 1000;

/// Arguments of `list_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDirArgs {
    /// Directory path, relative to the workspace.
    pub path: String,
}

fn run_it(a: &ListDirArgs, ctx: &ToolContext) -> ToolOutput {
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

/// `list_dir`.
pub struct ListDir;

impl Tool for ListDir {
    type Args = ListDirArgs;
    const NAME: &'static str = "list_dir";
    const DESCRIPTION: &'static str = "List a directory in your workspace: one entry per line, directories end with \
                                       `/`, files show their size in bytes. Use `.` for the workspace root.";

    fn needs(a: &ListDirArgs, caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        fs_need(caller.workspace, &a.path, Right::Read)
    }

    fn dispatch(_: &ListDirArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Local)
    }

    fn run(a: &ListDirArgs, ctx: &ToolContext) -> ToolOutput {
        run_it(a, ctx)
    }
}
