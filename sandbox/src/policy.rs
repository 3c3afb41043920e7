//! What a sandboxed program may reach, and the rules that say it to Landlock.
//!
//! A [`Policy`] names roots: directories (or files) readable beneath, and
//! writable beneath; and the protected paths no program may reach even when
//! they lie under a root (libos's store, configuration and images kept in a
//! workspace). Landlock only allows, it cannot carve an exception out of an
//! allowed directory, so [`rules`] carves by structure: a root with a
//! protected path somewhere beneath it gets only "list this directory" for
//! itself, and each of its entries is a rule of its own, recursively, except
//! the protected ones. A protected path that does not exist yet (a
//! `libos.toml` the operator has not written) is protected all the same: its
//! directory gets no right to create entries, so nothing can plant it.
//!
//! The cost of carving is that programs cannot create or remove entries
//! directly in a directory that holds a protected path (they can beneath
//! it); keeping libos's files out of workspaces avoids it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Resource limits of a sandboxed program and everything it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU seconds (`RLIMIT_CPU`), per process.
    pub cpu_s: u64,
    /// Address space in bytes (`RLIMIT_AS`), per process.
    pub memory_bytes: u64,
    /// Processes (threads included) alive at once in the sandbox (`RLIMIT_NPROC`,
    /// counted in the sandbox's own user namespace).
    pub processes: u64,
    /// Largest file it may write, in bytes (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { cpu_s: 600, memory_bytes: 4 << 30, processes: 256, file_bytes: 1 << 30, open_files: 1024 }
    }
}

/// Where a sandboxed program may connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// Nowhere: an empty network namespace (not even a loopback that is up).
    None,
    /// The host's network, with TCP `connect` allowed only to these ports
    /// (Landlock) and `bind` to none.
    TcpConnect(Vec<u16>),
    /// An empty network namespace whose loopback is up, with one HTTP proxy
    /// on `127.0.0.1:3128` (the only port Landlock lets it connect to),
    /// which the scheduler serves, deciding each destination
    /// ([`crate::proxy`]).
    Proxy,
}

/// What one sandboxed program may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Readable (and executable) beneath: the system a program needs to run.
    pub read: Vec<PathBuf>,
    /// Readable and writable beneath: the process's workspace.
    pub write: Vec<PathBuf>,
    /// Never reachable, even beneath a root (absolute paths; need not exist).
    pub protected: Vec<PathBuf>,
    /// Where it may connect.
    pub network: Network,
    /// Its resource limits.
    pub limits: Limits,
}

/// The system directories a program needs to run, read-only. `/etc` is not
/// among them: only the files below are (the dynamic linker's cache, users
/// and groups, time zone, certificates), so `/etc/shadow` and
/// `/etc/hostname` stay out of reach.
pub const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
];

/// The device files a sandbox has (readable and writable).
pub const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

impl Policy {
    /// The default policy for a workspace: the system read-only (plus every
    /// absolute directory on `path`, so the programs found there can run),
    /// the workspace read-write, no network.
    pub fn for_workspace(workspace: &Path, protected: Vec<PathBuf>, path: Option<&std::ffi::OsStr>) -> Policy {
        let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
        if let Some(path) = path {
            for dir in std::env::split_paths(path).filter(|d| d.is_absolute()) {
                if !read.iter().any(|r| dir.starts_with(r)) {
                    read.push(dir);
                }
            }
        }
        Policy {
            read,
            write: vec![workspace.to_path_buf()],
            protected,
            network: Network::None,
            limits: Limits::default(),
        }
    }
}

/// What a rule allows beneath its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// List the directory itself (its entries have rules of their own).
    ListOnly,
    /// Read and execute.
    Read,
    /// Everything.
    Write,
}

/// One Landlock rule: a path (opened without following a final symlink when
/// it lies in a writable, agent-controlled tree) and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The path.
    pub path: PathBuf,
    /// What it allows beneath.
    pub access: Access,
    /// Whether a symlink here may be followed to its target (system roots
    /// only: a symlink in a workspace is the agent's, so a rule never
    /// follows it; access through it is decided by the target's own rules).
    pub follow: bool,
}

/// The rules for `policy`, carving protected paths out of its roots.
/// Entries are listed now, so the rules describe the tree as it is when the
/// sandbox starts; a protected path that appears later is still out of
/// reach, because its directory was given no right to create it.
pub fn rules(policy: &Policy) -> Vec<Rule> {
    let mut out = Vec::new();
    for root in &policy.read {
        carve(root, &policy.protected, Access::Read, true, &mut out);
    }
    for root in &policy.write {
        carve(root, &policy.protected, Access::Write, false, &mut out);
    }
    out
}

fn carve(path: &Path, protected: &[PathBuf], access: Access, follow: bool, out: &mut Vec<Rule>) {
    if protected.iter().any(|p| path.starts_with(p)) {
        return;
    }
    let beneath: Vec<&PathBuf> = protected.iter().filter(|p| p.starts_with(path)).collect();
    if beneath.is_empty() {
        out.push(Rule { path: path.to_path_buf(), access, follow });
        return;
    }
    // Something protected lies beneath: this directory may be listed, and
    // each entry gets a rule of its own. Symlinks among the entries get
    // none: what they point to is decided by its own rules.
    out.push(Rule { path: path.to_path_buf(), access: Access::ListOnly, follow });
    let Ok(entries) = std::fs::read_dir(path) else { return };
    let mut names: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    names.sort();
    for entry in names {
        match std::fs::symlink_metadata(&entry) {
            Ok(m) if m.file_type().is_symlink() => {}
            Ok(m) if m.is_dir() => carve(&entry, protected, access, false, out),
            Ok(_) if protected.contains(&entry) => {}
            Ok(_) => out.push(Rule { path: entry, access, follow: false }),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn rel(rules: &[Rule], root: &Path) -> Vec<(String, Access)> {
        rules.iter().map(|r| (r.path.strip_prefix(root).unwrap_or(&r.path).display().to_string(), r.access)).collect()
    }

    #[test]
    fn protected_paths_inside_a_workspace_are_carved_out_whether_or_not_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join(".libos")).unwrap();
        std::fs::write(ws.join(".libos/libos.db"), "").unwrap();
        std::fs::create_dir_all(ws.join("src/deep")).unwrap();
        std::fs::create_dir_all(ws.join("imgs")).unwrap();
        std::fs::write(ws.join("notes.txt"), "").unwrap();
        std::os::unix::fs::symlink("/etc", ws.join("etc-link")).unwrap();
        let policy = Policy {
            read: Vec::new(),
            write: vec![ws.to_path_buf()],
            protected: vec![ws.join(".libos"), ws.join("libos.toml"), ws.join("imgs"), ws.join("src/deep/x.db")],
            network: Network::None,
            limits: Limits::default(),
        };
        assert_eq!(
            rel(&rules(&policy), ws),
            vec![
                ("".to_string(), Access::ListOnly),
                ("notes.txt".to_string(), Access::Write),
                ("src".to_string(), Access::ListOnly),
                ("src/deep".to_string(), Access::ListOnly),
            ]
        );
    }

    #[test]
    fn a_root_with_nothing_protected_beneath_is_one_rule() {
        let policy = Policy {
            read: vec![PathBuf::from("/usr")],
            write: vec![PathBuf::from("/work/ws")],
            protected: vec![PathBuf::from("/work/other/.libos")],
            network: Network::None,
            limits: Limits::default(),
        };
        assert_eq!(
            rules(&policy),
            vec![
                Rule { path: "/usr".into(), access: Access::Read, follow: true },
                Rule { path: "/work/ws".into(), access: Access::Write, follow: false },
            ]
        );
    }
}
