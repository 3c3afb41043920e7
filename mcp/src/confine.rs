//! What a stdio server may reach in the sandbox: its workspace read-write,
//! the system and `PATH` read-only (as for `shell`), no network, and,
//! read-only, its own installation and interpreter, which libos derives
//! from `command` (plus the `read` paths the operator declares).
//!
//! Derivation, for the program found (on `PATH` or at its path), the
//! interpreter of its `#!` line (through `/usr/bin/env NAME` too), and every
//! argument that is an existing absolute file (a script given to `node` or
//! `python`), each both as found and with links resolved:
//! - a path inside a `node_modules` directory: the directory holding the
//!   outermost `node_modules` (the npm prefix the operator installed into);
//! - a path in a `bin` directory: that directory's parent (a venv, a
//!   Node installation under `/opt`);
//! - otherwise its own directory.
//!
//! A derived root that would be `/`, the home directory, or a directory
//! holding the workspace is narrowed to the file alone: a server gets its
//! installation, never the machine.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use libos_sandbox::Policy;

/// Finds `command` (a path, or a name on `path`).
pub fn resolve(command: &str, path: Option<&OsStr>) -> Result<PathBuf, String> {
    if command.contains('/') {
        let p = PathBuf::from(command);
        return if p.is_file() { Ok(p) } else { Err(format!("`{command}` does not exist")) };
    }
    let found = path.into_iter().flat_map(std::env::split_paths).map(|d| d.join(command)).find(|p| is_executable(p));
    found.ok_or_else(|| format!("`{command}` was not found on PATH"))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The read-only roots derived for `program` and `args` (see the module docs).
pub fn derived_roots(program: &Path, args: &[String], path: Option<&OsStr>, workspace: &Path) -> Vec<PathBuf> {
    let mut files = vec![program.to_path_buf()];
    if let Some(interpreter) = shebang(program, path) {
        files.push(interpreter);
    }
    files.extend(args.iter().map(PathBuf::from).filter(|p| p.is_absolute() && p.is_file()));
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut roots: Vec<PathBuf> = Vec::new();
    for file in files {
        let canonical = std::fs::canonicalize(&file).ok();
        for f in std::iter::once(file).chain(canonical) {
            let root = match installation(&f) {
                Some(r) if r.parent().is_some() && Some(&r) != home.as_ref() && !workspace.starts_with(&r) => r,
                _ => f.clone(),
            };
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
    }
    roots
}

/// The sandbox policy of a stdio server.
pub fn policy(
    workspace: &Path,
    protected: Vec<PathBuf>,
    path: Option<&OsStr>,
    derived: &[PathBuf],
    declared: &[PathBuf],
) -> Policy {
    let mut policy = Policy::for_workspace(workspace, protected, path);
    for root in derived.iter().chain(declared) {
        if !policy.read.iter().any(|r| root.starts_with(r)) {
            policy.read.push(root.clone());
        }
    }
    policy
}

fn installation(file: &Path) -> Option<PathBuf> {
    let parts: Vec<Component<'_>> = file.components().collect();
    if let Some(i) = parts.iter().position(|c| c.as_os_str() == "node_modules") {
        return Some(parts[..i].iter().collect());
    }
    let dir = file.parent()?;
    if dir.file_name() == Some(OsStr::new("bin")) {
        return dir.parent().map(Path::to_path_buf);
    }
    Some(dir.to_path_buf())
}

/// The interpreter named by `file`'s `#!` line, if it has one.
fn shebang(file: &Path, path: Option<&OsStr>) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(file).and_then(|mut f| f.read(&mut head)).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = String::from_utf8_lossy(line.split(|b| *b == b'\n').next()?).into_owned();
    let mut words = line.split_whitespace();
    let interpreter = words.next()?;
    if Path::new(interpreter).file_name() == Some(OsStr::new("env")) {
        let name = words.find(|w| !w.starts_with('-'))?;
        return resolve(name, path).ok();
    }
    Some(PathBuf::from(interpreter))
}
