//! Confinement of file tools to a process's workspace: file tools open what
//! they check.
//!
//! A path is never handed to the operating system to resolve. It is walked
//! beneath a handle on the workspace root, one name at a time: each name is
//! opened relative to the directory handle before it, without following it
//! (`O_PATH | O_NOFOLLOW`), and what it is is asked of the opened handle. A
//! symlink is read from its own handle and its target spliced into the rest
//! of the walk (a relative target from the link's directory, an absolute one
//! only if it lies under the root); `..` steps back to the handle before it,
//! and stepping back from the root leaves the workspace. The walk ends with
//! the canonical path of what it found, which is what the capability check is
//! about, and the handles it holds: the object's directory and its name in
//! it. A missing tail must be plain names, created beneath those handles.
//!
//! Protected paths (the store and `.libos/`, the configuration, image
//! directories, scripts, the program) are refused by path and by identity:
//! every directory the walk passes through and the object it ends on are
//! compared, by device and inode, with each protected path that exists, so
//! a protected directory reached under another name is refused too.
//!
//! The tools then act on the handles, never again on the path: a read opens
//! the final name relative to its directory handle without following it and
//! checks that it is the object the walk found; a write creates a temporary
//! file in the directory handle and renames it over the name, relative to the
//! same handle; a delete unlinks the name relative to it. And they act only
//! if the walk led to the file the capability check was about
//! ([`crate::ToolContext::allowed`]). Symlinks can appear anywhere and at any
//! time (the shell tool, or any program, can make them and swap them for
//! directories): a swap can make a call fail, never make it reach something
//! it was not allowed to.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// Most symlinks one walk follows (as Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

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

/// Device and inode: what a file is, whatever it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    // The field types differ between targets; on most they are already u64.
    #[allow(clippy::unnecessary_cast)]
    pub(crate) fn of(stat: &Stat) -> Identity {
        Identity { dev: stat.st_dev as u64, ino: stat.st_ino as u64 }
    }
}

/// What a walk found at a path that exists.
#[derive(Debug)]
pub(crate) struct Found {
    /// The object, held without being opened for reading (`O_PATH`).
    pub fd: OwnedFd,
    /// Its type, from the held handle.
    pub kind: FileType,
    identity: Identity,
}

/// A path walked beneath the workspace root: the canonical path and the
/// handles that reach it.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The canonical path (inside the workspace, never protected).
    pub path: PathBuf,
    /// The directory holding the object (the root holds itself).
    pub dir: OwnedFd,
    /// The object's name in `dir` (none: the root, or a path that does not
    /// exist yet).
    pub name: Option<OsString>,
    /// What is there; none when the path does not exist yet.
    pub found: Option<Found>,
    /// Names below `dir` that do not exist yet, the object's own last
    /// (empty when it exists).
    pub missing: Vec<OsString>,
}

impl Opened {
    /// Opens the found object for reading: a directory through the handle
    /// the walk holds on it; anything else by its name relative to its
    /// directory handle, not following a symlink, without blocking, and only
    /// if it is still the object the walk found.
    pub fn reopen(&self, flags: OFlags) -> std::io::Result<OwnedFd> {
        let Some(found) = &self.found else { return Err(Errno::NOENT.into()) };
        let flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let changed = || std::io::Error::other("it changed while it was being opened");
        let fd = match &self.name {
            Some(name) if found.kind != FileType::Directory => {
                match rustix::fs::openat(&self.dir, name.as_os_str(), flags, Mode::empty()) {
                    Ok(fd) => fd,
                    // A symlink now, where the walk found a file.
                    Err(Errno::LOOP) => return Err(changed()),
                    Err(e) => return Err(e.into()),
                }
            }
            _ => rustix::fs::openat(&found.fd, ".", flags, Mode::empty())?,
        };
        if Identity::of(&rustix::fs::fstat(&fd)?) != found.identity {
            return Err(changed());
        }
        Ok(fd)
    }
}

impl Opened {
    /// Reads at most `limit` bytes of the regular file found, through
    /// [`Opened::reopen`]; true when the file holds more.
    pub(crate) fn read_prefix(&self, limit: usize) -> std::io::Result<(Vec<u8>, bool)> {
        use std::io::Read;
        let file = std::fs::File::from(self.reopen(OFlags::RDONLY)?);
        let mut bytes = Vec::new();
        file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
        let more = bytes.len() > limit;
        bytes.truncate(limit);
        Ok((bytes, more))
    }
}

/// What a file holds now, as [`Workspace::peek`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// Nothing there yet (a write creates it).
    Missing,
    /// A UTF-8 text file, whole.
    Text(String),
    /// A regular file that is not UTF-8 text.
    Binary {
        /// Its size.
        bytes: u64,
    },
    /// A regular file larger than the peek's limit.
    TooLarge {
        /// Its size.
        bytes: u64,
    },
    /// Not a regular file (a directory, a FIFO, a device, a socket).
    NotAFile,
    /// There, but it could not be read (one line saying why).
    Unreadable(String),
}

/// A path walked as the file tools walk it, and what is there now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// The canonical path it leads to (inside the workspace, never protected).
    pub path: PathBuf,
    /// What the file holds; `None` when the path did not lead where the
    /// caller wanted, so nothing was read.
    pub current: Option<Current>,
}

impl Workspace {
    /// Walks `given` exactly as the file tools do (no symlink followed out
    /// of the workspace, protected paths refused) and, only if `wanted`
    /// accepts the canonical path it leads to, reads what is there: at most
    /// `limit` bytes of a regular file, opened without following a symlink
    /// or blocking. For showing a person what a parked call would replace.
    pub fn peek(&self, given: &str, limit: usize, wanted: impl FnOnce(&Path) -> bool) -> Result<Peek, PathError> {
        let opened = self.open(given)?;
        if !wanted(&opened.path) {
            return Ok(Peek { path: opened.path, current: None });
        }
        let current = match &opened.found {
            None => Current::Missing,
            Some(f) if f.kind != FileType::RegularFile => Current::NotAFile,
            Some(f) => match opened.read_prefix(limit) {
                Ok((_, true)) => {
                    Current::TooLarge { bytes: rustix::fs::fstat(&f.fd).map_or(limit as u64 + 1, |s| s.st_size as u64) }
                }
                Ok((bytes, false)) => match String::from_utf8(bytes) {
                    Ok(text) => Current::Text(text),
                    Err(e) => Current::Binary { bytes: e.as_bytes().len() as u64 },
                },
                Err(e) => Current::Unreadable(io_reason(&e)),
            },
        };
        Ok(Peek { path: opened.path, current: Some(current) })
    }

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

    /// Whether `path` (canonical) is protected, by its name. File tools also
    /// refuse a protected file or directory reached under another name.
    pub fn is_protected(&self, path: &Path) -> bool {
        self.protected.iter().any(|p| path.starts_with(p))
    }

    /// Resolves a path given by the model to a canonical path inside the
    /// workspace, the way the file tools will open it. Errors are
    /// model-visible one-liners naming the path.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, PathError> {
        self.open(path).map(|o| o.path)
    }

    /// Walks `given` beneath the root (see the module docs).
    pub(crate) fn open(&self, given: &str) -> Result<Opened, PathError> {
        if given.is_empty() {
            return Err(PathError::Invalid("path is empty".to_string()));
        }
        if given.contains('\0') {
            return Err(PathError::Invalid("path contains a NUL byte".to_string()));
        }
        let walk = Walk { ws: self, given, protected: self.protected_identities() };
        walk.run()
    }

    /// The identities of the protected paths that exist now.
    pub(crate) fn protected_identities(&self) -> Vec<Identity> {
        self.protected.iter().filter_map(|p| rustix::fs::stat(p).ok()).map(|s| Identity::of(&s)).collect()
    }

    /// A resolved path as the capability resource it is: `fs:` and the path
    /// relative to the root, `/`-separated (empty for the root itself).
    pub fn resource(&self, resolved: &Path) -> libos_core::caps::Resource {
        let rel = resolved.strip_prefix(&self.root).unwrap_or(resolved);
        let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        libos_core::caps::Resource::fs(&parts.join("/"))
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

/// A name still to walk, and whether it came from a symlink's target.
type Step = (OsString, bool);

struct Walk<'a> {
    ws: &'a Workspace,
    given: &'a str,
    protected: Vec<Identity>,
}

impl Walk<'_> {
    fn outside(&self) -> PathError {
        PathError::Confined(format!("path `{}` is outside the workspace", self.given))
    }

    fn own_state(&self) -> PathError {
        PathError::Confined(format!("path `{}` is libos's own state and is never accessible to tools", self.given))
    }

    fn invalid(&self, why: &str) -> PathError {
        PathError::Invalid(format!("path `{}` {why}", self.given))
    }

    fn io(&self, e: impl Into<std::io::Error>) -> PathError {
        PathError::Invalid(format!("path `{}`: {}", self.given, io_reason(&e.into())))
    }

    /// Refuses a protected path, or a protected object under any name.
    fn check(&self, path: &Path, identity: Option<Identity>) -> Result<(), PathError> {
        if self.ws.is_protected(path) || identity.is_some_and(|i| self.protected.contains(&i)) {
            return Err(self.own_state());
        }
        Ok(())
    }

    /// The names of `path` (relative to the root when absolute), in order.
    fn steps(&self, path: &Path, from_link: bool) -> Result<(bool, Vec<Step>), PathError> {
        let (absolute, rel) = match path.strip_prefix(&self.ws.root) {
            Ok(rel) if path.is_absolute() => (true, rel),
            _ if path.is_absolute() => return Err(self.outside()),
            _ => (false, path),
        };
        let mut steps = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => steps.push((n.to_os_string(), from_link)),
                Component::ParentDir => steps.push((OsString::from(".."), from_link)),
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => return Err(self.outside()),
            }
        }
        Ok((absolute, steps))
    }

    fn run(&self) -> Result<Opened, PathError> {
        let root_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = rustix::fs::open(&self.ws.root, root_flags, Mode::empty()).map_err(|e| self.io(e))?;
        let root_stat = rustix::fs::fstat(&root).map_err(|e| self.io(e))?;
        self.check(&self.ws.root, Some(Identity::of(&root_stat)))?;
        let (_, steps) = self.steps(Path::new(self.given), false)?;
        let mut pending: VecDeque<Step> = steps.into();
        // The directories below the root that the walk holds, by name.
        let mut held: Vec<(OwnedFd, OsString, Identity)> = Vec::new();
        let mut links = 0;
        let path_of = |held: &[(OwnedFd, OsString, Identity)]| {
            let mut p = self.ws.root.clone();
            p.extend(held.iter().map(|(_, n, _)| n));
            p
        };
        while let Some((name, from_link)) = pending.pop_front() {
            if name == ".." {
                if held.pop().is_none() {
                    return Err(self.outside());
                }
                continue;
            }
            let dir: BorrowedFd<'_> = held.last().map_or(root.as_fd(), |(fd, _, _)| fd.as_fd());
            let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat(dir, name.as_os_str(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    if from_link || pending.iter().any(|(_, l)| *l) {
                        return Err(self.invalid("goes through a broken symlink"));
                    }
                    let mut missing = vec![name];
                    for (n, _) in pending {
                        if n == ".." {
                            return Err(self.invalid("cannot be resolved"));
                        }
                        missing.push(n);
                    }
                    let mut path = path_of(&held);
                    path.extend(&missing);
                    self.check(&path, None)?;
                    let dir = match held.pop() {
                        Some((fd, _, _)) => fd,
                        None => root,
                    };
                    return Ok(Opened { path, dir, name: None, found: None, missing });
                }
                Err(e) => return Err(self.io(e)),
            };
            let stat = rustix::fs::fstat(&fd).map_err(|e| self.io(e))?;
            let identity = Identity::of(&stat);
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(self.invalid("has too many levels of symbolic links"));
                    }
                    let target = rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(|e| self.io(e))?;
                    let (absolute, steps) = self.steps(Path::new(OsStr::from_bytes(target.as_bytes())), true)?;
                    if absolute {
                        held.clear();
                    }
                    for step in steps.into_iter().rev() {
                        pending.push_front(step);
                    }
                }
                FileType::Directory => {
                    held.push((fd, name, identity));
                    self.check(&path_of(&held), Some(identity))?;
                }
                kind => {
                    if !pending.is_empty() {
                        return Err(self.io(Errno::NOTDIR));
                    }
                    let mut path = path_of(&held);
                    path.push(&name);
                    self.check(&path, Some(identity))?;
                    let dir = match held.pop() {
                        Some((fd, _, _)) => fd,
                        None => root,
                    };
                    let found = Found { fd, kind, identity };
                    return Ok(Opened { path, dir, name: Some(name), found: Some(found), missing: Vec::new() });
                }
            }
        }
        // The walk ended on a directory: the last one held, or the root.
        let path = path_of(&held);
        let Some((fd, name, identity)) = held.pop() else {
            let fd = root.try_clone().map_err(|e| self.io(e))?;
            let found = Found { fd, kind: FileType::Directory, identity: Identity::of(&root_stat) };
            return Ok(Opened { path, dir: root, name: None, found: Some(found), missing: Vec::new() });
        };
        let dir = match held.pop() {
            Some((fd, _, _)) => fd,
            None => root,
        };
        let found = Found { fd, kind: FileType::Directory, identity };
        Ok(Opened { path, dir, name: Some(name), found: Some(found), missing: Vec::new() })
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
