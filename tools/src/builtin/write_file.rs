//! `write_file(path, content)`: create or replace a file in the workspace.
//!
//! The write goes to a temporary file in the same directory and is renamed
//! over the target, so a crash leaves either the old content or the new one,
//! never a torn file. Both happen relative to the directory handle the walk
//! beneath the workspace holds ([`crate::workspace`]), never by path.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use libos_core::caps::Right;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::fs_need;
use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
use crate::tool::Tool;
use crate::workspace::io_reason;
use libos_core::syscall::Need;

/// Arguments of `write_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// File path, relative to the workspace.
    pub path: String,
    /// The complete new content of the file.
    pub content: String,
}

fn run_it(a: &WriteFileArgs, ctx: &ToolContext) -> ToolOutput {
    let opened = match ctx.open(&a.path, Right::Write) {
        Ok(o) => o,
        Err(e) => return ToolOutput::Error(e),
    };
    let fail = |e: std::io::Error| ToolOutput::Error(format!("cannot write `{}`: {}", a.path, io_reason(&e)));
    let (dir, name) = match (&opened.found, opened.name) {
        (Some(f), _) if f.kind == FileType::Directory => {
            return ToolOutput::Error(format!("`{}` is a directory", a.path));
        }
        (Some(_), Some(name)) => (opened.dir, name),
        (Some(_), None) => return ToolOutput::Error(format!("`{}` is a directory", a.path)),
        (None, _) => match create_parents(opened.dir, &opened.missing) {
            Ok(found) => found,
            Err(e) => return fail(e),
        },
    };
    // Unique per write, so concurrent writes to one path never share a temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut tmp = OsString::from(".");
    tmp.push(&name);
    tmp.push(format!(".libos-{}-{n}.tmp", std::process::id()));
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let written = rustix::fs::openat(&dir, tmp.as_os_str(), flags, Mode::from_raw_mode(0o666))
        .map_err(std::io::Error::from)
        .and_then(|fd| {
            let mut file = std::fs::File::from(fd);
            file.write_all(a.content.as_bytes())?;
            file.sync_all()
        });
    let renamed = written.and_then(|()| {
        rustix::fs::renameat(&dir, tmp.as_os_str(), &dir, name.as_os_str()).map_err(std::io::Error::from)
    });
    if let Err(e) = renamed {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_os_str(), AtFlags::empty());
        return fail(e);
    }
    ToolOutput::Ok(format!("wrote {} bytes to `{}`", a.content.len(), ctx.workspace.display(&opened.path)))
}

/// Creates the missing directories of `missing` (all but its last name,
/// the file's) beneath `dir`, each opened without following a symlink that
/// appeared there meanwhile. Returns the file's directory and its name.
fn create_parents(mut dir: OwnedFd, missing: &[OsString]) -> std::io::Result<(OwnedFd, OsString)> {
    let Some((name, parents)) = missing.split_last() else {
        return Err(std::io::Error::other("no file name"));
    };
    for parent in parents {
        match rustix::fs::mkdirat(&dir, parent.as_os_str(), Mode::from_raw_mode(0o777)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = rustix::fs::openat(&dir, parent.as_os_str(), flags, Mode::empty())?;
    }
    Ok((dir, name.clone()))
}

/// `write_file`.
pub struct WriteFile;

impl Tool for WriteFile {
    type Args = WriteFileArgs;
    const NAME: &'static str = "write_file";
    const DESCRIPTION: &'static str = "Create or replace a text file in your workspace with the given content. \
                                       Missing parent directories are created.";

    fn needs(a: &WriteFileArgs, caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        fs_need(caller.workspace, &a.path, Right::Write)
    }

    fn dispatch(_: &WriteFileArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::External)
    }

    fn run(a: &WriteFileArgs, ctx: &ToolContext) -> ToolOutput {
        run_it(a, ctx)
    }
}
