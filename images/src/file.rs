//! Reading a file libos loads at start: an image, the configuration, a script.
//!
//! Only a regular file is read. The file is opened without blocking and its
//! type is checked on the opened descriptor before a byte is read, so a FIFO
//! (whose open would wait for a writer) or a device (`/dev/zero` reads
//! forever) planted where a file is expected is a one-line error, not a hang.
//! Symlinks are followed: an operator may link an image into a directory.

use std::io::Read;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

/// Most bytes read from one such file.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why a file could not be read; the text is a lowercase reason without the
/// file's name (callers say what the file is for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Nothing at that path.
    #[error("no such file or directory")]
    NotFound,
    /// Something is there, but it cannot be loaded.
    #[error("{0}")]
    Unreadable(String),
}

/// Reads `path`, a regular file of at most [`MAX_FILE_BYTES`] of UTF-8.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::NOENT => FileError::NotFound,
        e => FileError::Unreadable(reason(&std::io::Error::from(e))),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| FileError::Unreadable(reason(&std::io::Error::from(e))))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(FileError::Unreadable("not a regular file".to_string()));
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::Unreadable(reason(&e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::Unreadable(format!("larger than {} MiB", MAX_FILE_BYTES / (1024 * 1024))));
    }
    String::from_utf8(bytes).map_err(|_| FileError::Unreadable("not valid UTF-8".to_string()))
}

/// A lowercase I/O reason without the `(os error N)` tail.
fn reason(e: &std::io::Error) -> String {
    let text = e.to_string().to_lowercase();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
