//! `delete_file(path)`: remove a file from the workspace.

use libos_core::caps::Right;
use rustix::fs::{AtFlags, FileType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::fs_need;
use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
use crate::tool::Tool;
use crate::workspace::io_reason;
use libos_core::syscall::Need;

/// Arguments of `delete_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteFileArgs {
    /// File path, relative to the workspace.
    pub path: String,
}

fn run_it(a: &DeleteFileArgs, ctx: &ToolContext) -> ToolOutput {
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

/// `delete_file`.
pub struct DeleteFile;

impl Tool for DeleteFile {
    type Args = DeleteFileArgs;
    const NAME: &'static str = "delete_file";
    const DESCRIPTION: &'static str = "Delete a file in your workspace (not a directory).";

    fn needs(a: &DeleteFileArgs, caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        fs_need(caller.workspace, &a.path, Right::Delete)
    }

    fn dispatch(_: &DeleteFileArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::External)
    }

    fn run(a: &DeleteFileArgs, ctx: &ToolContext) -> ToolOutput {
        run_it(a, ctx)
    }
}
