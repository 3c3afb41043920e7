//! Memory: a durable object store, and each process's view of it.
//!
//! An object is `(oid, namespace, name, kind, content, version, owner)`.
//! Each process has a private namespace (`pid:N`) and a **view**: the
//! handles `(oid, rights, pinned)` it can see. Writing creates or updates an
//! object in the writer's namespace and puts it in the writer's view with
//! read and write; sharing gives one of the process's own children a handle
//! with at most the sharer's rights. Pinned objects are materialised into
//! the prompt within the image's token budget.

use crate::actor::Actor;
use crate::caps::Rights;
use crate::ids::{ObjectId, Pid};
use crate::time::Timestamp;

/// Largest object content, in bytes.
pub const MAX_OBJECT_BYTES: usize = 256 * 1024;
/// Longest object name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// A process's private namespace.
pub fn namespace_of(pid: Pid) -> String {
    format!("pid:{pid}")
}

/// An object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its id.
    pub oid: ObjectId,
    /// The namespace it lives in.
    pub namespace: String,
    /// Its name within the namespace.
    pub name: String,
    /// A free-form kind (`text`, `json`, `note`, ...).
    pub kind: String,
    /// The content.
    pub content: String,
    /// 1 when created, +1 on every write.
    pub version: u64,
    /// The process that created it.
    pub owner: Pid,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last write.
    pub updated_at: Timestamp,
}

/// A handle in a process's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    /// The object (content not loaded: see [`Object`]).
    pub oid: ObjectId,
    /// Its namespace and name.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its version.
    pub version: u64,
    /// Content size in bytes.
    pub bytes: u64,
    /// What this process may do with it (read, write).
    pub rights: Rights,
    /// Materialised into the prompt.
    pub pinned: bool,
    /// Who put it in the view.
    pub granted_by: Actor,
}

/// Checks an object name: non-empty, bounded, printable, no `/`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("object name is empty".to_string());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("object name is {} bytes, more than the {MAX_NAME_BYTES} allowed", name.len()));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!("object name `{name}` may not contain `/` or control characters"));
    }
    Ok(())
}
