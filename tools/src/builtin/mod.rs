//! The built-in tools, one file each, and `entries`, the list the
//! registry is built from. Adding a built-in is a new file here with its
//! arguments type and a [`crate::Tool`] impl, plus its line in
//! `entries` (and its `mod` line).

use libos_core::caps::{Resource, ResourceKind, Right};
use libos_core::syscall::Need;

use crate::dispatch::Refusal;
use crate::registry::Entry;
use crate::workspace::{PathError, Workspace};

pub mod args;
pub mod ask_human;
pub mod children;
pub mod delete_file;
pub mod exit;
pub mod filter;
pub mod http_request;
pub mod list_dir;
pub mod memory_list;
pub mod memory_pin;
pub mod memory_read;
pub mod memory_search;
pub mod memory_share;
pub mod memory_unpin;
pub mod memory_write;
pub mod now;
pub mod read;
pub mod read_file;
pub mod receive;
pub mod send;
pub mod shell;
pub mod signal;
pub mod sleep;
pub mod spawn;
pub mod wait;
pub mod write_file;

/// Every built-in, in the order schemas are presented.
pub(crate) fn entries() -> Vec<Entry> {
    vec![
        Entry::builtin::<exit::Exit>(),
        Entry::builtin::<now::Now>(),
        Entry::builtin::<read_file::ReadFile>(),
        Entry::builtin::<list_dir::ListDir>(),
        Entry::builtin::<write_file::WriteFile>(),
        Entry::builtin::<delete_file::DeleteFile>(),
        Entry::builtin::<spawn::Spawn>(),
        Entry::builtin::<wait::Wait>(),
        Entry::builtin::<children::Children>(),
        Entry::builtin::<signal::Signal>(),
        Entry::builtin::<send::Send>(),
        Entry::builtin::<read::Read>(),
        Entry::builtin::<receive::Receive>(),
        Entry::builtin::<sleep::Sleep>(),
        Entry::builtin::<ask_human::AskHuman>(),
        Entry::builtin::<memory_write::MemoryWrite>(),
        Entry::builtin::<memory_read::MemoryRead>(),
        Entry::builtin::<memory_list::MemoryList>(),
        Entry::builtin::<memory_search::MemorySearch>(),
        Entry::builtin::<memory_share::MemoryShare>(),
        Entry::builtin::<memory_pin::MemoryPin>(),
        Entry::builtin::<memory_unpin::MemoryUnpin>(),
        Entry::builtin::<shell::Shell>(),
        Entry::builtin::<http_request::HttpRequest>(),
    ]
}

/// What a file tool needs: `right` on the file `path` resolves to beneath
/// the workspace (symlinks and `..` followed the way the tool will open
/// it). Outside the workspace, or into libos's own files: a
/// [`Refusal::Confined`] no grant can lift.
pub(crate) fn fs_need(workspace: &Workspace, path: &str, right: Right) -> Result<Vec<Need>, Refusal> {
    match workspace.resolve(path) {
        Ok(resolved) => Ok(vec![Need::grant(workspace.resource(&resolved), right)]),
        Err(PathError::Invalid(reason)) => Err(Refusal::Invalid(reason)),
        Err(PathError::Confined(reason)) => {
            Err(Refusal::Confined { need: Need::grant(Resource::new(ResourceKind::Fs, path), right), reason })
        }
    }
}
