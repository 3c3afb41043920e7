//! Kernel errors: one enum for operations, one for opening a store, one for the store itself.

use std::path::PathBuf;

use crate::ids::{Generation, GrantId, ObjectId, Pid, RequestId};
use crate::state::TransitionError;

/// A failure of the storage layer, with the cases callers must tell apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another process held the write lock past the busy timeout.
    #[error(
        "store is locked by another process (gave up after waiting {} s); nothing was changed",
        crate::store::BUSY_TIMEOUT.as_secs()
    )]
    Busy,
    /// The file or its directory cannot be written.
    #[error("store is read-only; nothing was changed")]
    ReadOnly,
    /// No space left for the write.
    #[error("the disk holding the store is full; nothing was changed")]
    Full,
    /// The database file is damaged.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The connection to the store (PostgreSQL) was lost and could not be
    /// restored within a few seconds (as long as a write waits for a
    /// lock); the operation's transaction was rolled back.
    #[error("store is unreachable: {0}; nothing was changed")]
    Unreachable(String),
    /// The connection was lost while the transaction was committing, and
    /// whether it committed could not be found out (the server stayed out
    /// of reach). The change may or may not have been made.
    #[error("the connection to the store was lost while committing ({0}); the change may or may not have been made")]
    CommitUnknown(String),
    /// Anything else the database reported.
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether trying again later may succeed: the store was busy or out of
    /// reach, not damaged, full or refusing writes.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Busy | StoreError::Unreachable(_) | StoreError::CommitUnknown(_) => true,
            StoreError::ReadOnly | StoreError::Full | StoreError::Corrupt(_) | StoreError::Other(_) => false,
        }
    }
}

/// Why a store could not be opened. Nothing is written to the path when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The store does not exist and the command does not create one.
    #[error("no libos store at {0} (run `libos init`, or pass --db)")]
    Missing(PathBuf),
    /// A store URL whose kind this build cannot open.
    #[error("cannot open store {0}: not a kind of store libos knows (a file path, `:memory:` or postgres://...)")]
    Unsupported(String),
    /// The path names a directory.
    #[error("store path {0} is a directory, not a database file")]
    IsDirectory(PathBuf),
    /// The file is not an SQLite database.
    #[error("{0} is not a libos store (not an SQLite database)")]
    NotADatabase(PathBuf),
    /// A database (an SQLite file, a PostgreSQL schema) holding tables libos did not create.
    #[error("{0} holds tables but is not a libos store")]
    Foreign(PathBuf),
    /// Written by a newer libos.
    #[error("store {path} has schema version {found}, newer than this libos supports ({supported}); upgrade libos")]
    TooNew {
        /// The store.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The file or its directory could not be created, read or written.
    #[error("cannot open store {path}: {reason}")]
    Io {
        /// The store.
        path: PathBuf,
        /// The operating system's or database's reason.
        reason: String,
    },
}

/// A kernel operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// The pid names no process in this store.
    #[error("no process with pid {0}")]
    NoSuchProcess(Pid),
    /// The event is not allowed in the process's state.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The process changed since the caller read it (lease lost, killed meanwhile).
    #[error("process {pid} changed under this writer (expected generation {expected}, found {found})")]
    Stale {
        /// The process.
        pid: Pid,
        /// The generation the writer held.
        expected: Generation,
        /// The generation in the store.
        found: Generation,
    },
    /// No request with this id.
    #[error("no request with id {0}")]
    NoSuchRequest(RequestId),
    /// No object with this id.
    #[error("no object with id {0}")]
    NoSuchObject(ObjectId),
    /// No grant with this id.
    #[error("no grant with id {0}")]
    NoSuchGrant(GrantId),
    /// Refused because of where something stands (a request already decided,
    /// a process that ended, a stored call that does not match its record).
    #[error("{0}")]
    Refused(String),
    /// The image digest names no registered image.
    #[error("no registered image with digest {0}")]
    NoSuchImage(String),
    /// Bad input from a caller (empty goal, oversized field).
    #[error("{0}")]
    Invalid(String),
    /// A call named a tool by a name no tool can have.
    #[error(transparent)]
    BadToolName(#[from] crate::tool_name::BadToolName),
    /// The store failed; the operation did not happen (except after
    /// [`StoreError::CommitUnknown`], which says so).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KernelError {
    /// Whether this is a store failure that trying again later may cure
    /// ([`StoreError::is_transient`]); a scheduler rides these out.
    pub fn is_transient(&self) -> bool {
        matches!(self, KernelError::Store(e) if e.is_transient())
    }
}
