//! Confinement of file tools to a process's workspace.
//!
//! A path is resolved before any check: relative paths are joined to the
//! workspace, the longest existing prefix is canonicalised by the operating
//! system (so `..` and symlinks are followed exactly as the OS would), and the
//! not-yet-existing rest must be plain names. The result must lie inside the
//! workspace and outside every protected path (the store and libos's state).
//! A dangling symlink is refused rather than followed.
//!
//! Known limit: between this check and the open, another program with access
//! to the workspace could swap a directory for a symlink. No libos tool can
//! create symlinks, so an agent cannot race itself through libos alone.

use std::path::{Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Not a usable path (empty, a NUL byte, a broken symlink): a mistake.
    Invalid(String),
    /// A real path the process may never reach (outside its workspace, or
    /// libos's own files): a denial, audited as one.
    Confined(String),
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathError::Invalid(m) | PathError::Confined(m) => f.write_str(m),
        }
    }
}

/// The directory a process's file tools are confined to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
    protected: Vec<PathBuf>,
}

impl Workspace {
    /// A workspace rooted at `root` (must exist), never reaching any of `protected`.
    pub fn new(root: &Path, protected: Vec<PathBuf>) -> Result<Workspace, String> {
        let root = std::fs::canonicalize(root)
            .map_err(|e| format!("workspace {} is not usable: {}", root.display(), io_reason(&e)))?;
        if !root.is_dir() {
            return Err(format!("workspace {} is not a directory", root.display()));
        }
        Ok(Workspace { root, protected })
    }

    /// A workspace whose root was canonicalised before (by [`Workspace::new`]).
    pub fn with_canonical_root(root: PathBuf, protected: Vec<PathBuf>) -> Workspace {
        Workspace { root, protected }
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The paths no tool may reach (absolute; they need not exist).
    pub fn protected(&self) -> &[PathBuf] {
        &self.protected
    }

    /// Whether `path` (canonical) is protected.
    pub fn is_protected(&self, path: &Path) -> bool {
        self.protected.iter().any(|p| path.starts_with(p))
    }

    /// Resolves a path given by the model to a canonical path inside the
    /// workspace. Errors are model-visible one-liners naming the path.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, PathError> {
        if path.is_empty() {
            return Err(PathError::Invalid("path is empty".to_string()));
        }
        if path.contains('\0') {
            return Err(PathError::Invalid("path contains a NUL byte".to_string()));
        }
        let given = Path::new(path);
        let joined = if given.is_absolute() { given.to_path_buf() } else { self.root.join(given) };
        let mut base = joined.as_path();
        let mut tail = Vec::new();
        // symlink_metadata: a dangling symlink counts as existing, so it is
        // canonicalised (and refused) rather than written through.
        while std::fs::symlink_metadata(base).is_err() {
            let Some(name) = base.file_name() else {
                return Err(PathError::Invalid(format!("path `{path}` cannot be resolved")));
            };
            tail.push(name.to_os_string());
            base = base.parent().ok_or_else(|| PathError::Invalid(format!("path `{path}` cannot be resolved")))?;
        }
        let mut resolved = std::fs::canonicalize(base).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PathError::Invalid(format!("path `{path}` goes through a broken symlink")),
            _ => PathError::Invalid(format!("path `{path}`: {}", io_reason(&e))),
        })?;
        for name in tail.into_iter().rev() {
            resolved.push(name);
        }
        if !resolved.starts_with(&self.root) {
            return Err(PathError::Confined(format!("path `{path}` is outside the workspace")));
        }
        if self.is_protected(&resolved) {
            return Err(PathError::Confined(format!(
                "path `{path}` is libos's own state and is never accessible to tools"
            )));
        }
        Ok(resolved)
    }

    /// A resolved path as the capability resource it is: `fs:` and the path
    /// relative to the root, `/`-separated (empty for the root itself).
    pub fn resource(&self, resolved: &Path) -> libos_kernel::caps::Resource {
        let rel = resolved.strip_prefix(&self.root).unwrap_or(resolved);
        let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        libos_kernel::caps::Resource::fs(&parts.join("/"))
    }

    /// `path` relative to the root, for messages.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}

/// A lowercase, short reason for an I/O error.
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "no such file or directory".to_string(),
        K::PermissionDenied => "permission denied".to_string(),
        K::AlreadyExists => "already exists".to_string(),
        K::IsADirectory => "is a directory".to_string(),
        K::NotADirectory => "not a directory".to_string(),
        K::StorageFull => "no space left on device".to_string(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text.to_lowercase(),
            }
        }
    }
}
