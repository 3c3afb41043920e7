//! The launcher: a fresh, single-threaded process that builds the sandbox
//! and starts the program in it. It runs as `libos-sandbox` (or the `libos`
//! binary itself) with the job in the environment, in two stages:
//!
//! 1. **Outside.** Ask to die with its parent (the scheduler), join a pids
//!    cgroup of its own, then enter new user, PID, IPC and UTS namespaces,
//!    and a network namespace
//!    unless the policy allows the network; map its own uid and gid to
//!    themselves (so files keep their owners), and start stage 2, which is
//!    PID 1 of the new PID namespace. Its exit status is the program's.
//! 2. **Inside, as PID 1.** In a mount namespace of its own, build the
//!    program's file system from its roots alone and pivot into it (a fresh
//!    `/proc` showing only this sandbox's processes, a private `/tmp`);
//!    cover libos's own files that lie in the workspace with empty
//!    read-only mounts; set resource limits; step out of the program's
//!    reach (non-dumpable, an inner user namespace); enter
//!    a Landlock domain built from [`crate::policy::rules`] (this also sets
//!    no-new-privileges, and scopes signals and abstract sockets to the
//!    sandbox) and a seccomp filter; refuse to go on if any descriptor but
//!    0, 1 and 2 is open;
//!    then start the program with exactly the job's environment, wait for
//!    it, and exit with its status. When PID 1 exits, the kernel kills every
//!    process left in the namespace: a program cannot leave anything
//!    running behind it, whatever sessions or process groups it made.
//!
//! Both stages are whole processes, so everything is done with safe
//! wrappers before the next stage starts, and what is inherited
//! (namespaces, limits, the Landlock domain) carries over to the program.
//! The one `unsafe` is closing the descriptors the launcher inherited,
//! before it does anything else (`close_inherited`).

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use landlock::{
    ABI, Access as _, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::stat::{Mode, SFlag};
use serde::{Deserialize, Serialize};

use crate::policy::{self, Access, Network, Policy, Rule};
use crate::proxy::PROXY_PORT;

/// The environment variable that carries the job to the launcher.
pub const JOB_ENV: &str = "LIBOS_SANDBOX_JOB";
/// The argument that tells a binary embedding the launcher to act as one.
pub const LAUNCH_ARG: &str = "__libos-sandbox";
/// Exit status when the sandbox could not be set up (the program never ran).
pub const EXIT_SETUP: i32 = 125;
/// Exit status when the program could not be started.
pub const EXIT_NOT_RUN: i32 = 127;
/// What the launcher's own messages start with on standard error.
pub const MESSAGE_PREFIX: &str = "libos-sandbox: ";
/// What a probe prints on standard output when the sandbox holds.
pub const PROBE_OK: &str = "libos-sandbox probe:";

const STAGE_ENV: &str = "LIBOS_SANDBOX_STAGE";
/// How stage 1 limited the number of processes, for the probe's report.
const PIDS_ENV: &str = "LIBOS_SANDBOX_PIDS";
/// The Landlock ABI the rules are written for (6: file system, TCP, scopes);
/// an older kernel enforces what it knows, and the probe says so.
const TARGET_ABI: ABI = ABI::V6;

/// What the launcher runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The program (looked up on the job's `PATH`) and its arguments;
    /// empty for a probe.
    pub argv: Vec<String>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// What it may reach.
    pub policy: Policy,
    /// A last stop, independent of the caller: past this many milliseconds
    /// the sandbox ends itself.
    pub deadline_ms: u64,
    /// Where to hand the proxy's listening socket over, when the policy's
    /// network is [`Network::Proxy`].
    #[serde(default)]
    pub proxy: Option<ProxyHandover>,
}

/// The one-shot Unix socket the launcher hands the proxy's listener to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyHandover {
    /// Its path (outside the sandbox; connected before the root is built).
    pub socket: PathBuf,
    /// Sent with the listener, so the scheduler takes it from this launcher only.
    pub token: String,
}

/// Whether this process was started as the launcher. A binary that embeds
/// it (the `libos` CLI) calls this first thing in `main`, before any thread
/// starts, and hands over to [`main`] when it returns true.
pub fn invoked() -> bool {
    std::env::args_os().nth(1).is_some_and(|a| a == LAUNCH_ARG) && std::env::var_os(JOB_ENV).is_some()
}

/// The launcher's entry point; never returns.
pub fn main() -> ! {
    close_inherited();
    let stage_two = std::env::var_os(STAGE_ENV).is_some_and(|s| s == "2");
    let result = read_job().and_then(|job| if stage_two { inside(&job) } else { outside(&job) });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{MESSAGE_PREFIX}{e}");
            std::process::exit(EXIT_SETUP)
        }
    }
}

fn read_job() -> Result<Job, String> {
    let text = std::env::var(JOB_ENV).map_err(|_| format!("{JOB_ENV} is not set"))?;
    serde_json::from_str(&text).map_err(|e| format!("the job is malformed: {e}"))
}

fn die_with_parent() -> Result<(), String> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    // The parent may have died before the request took effect.
    if nix::unistd::getppid().as_raw() == 1 && std::process::id() != 1 {
        return Err("the parent is gone".to_string());
    }
    Ok(())
}

fn outside(job: &Job) -> Result<i32, String> {
    die_with_parent()?;
    let cgroup = join_pids_cgroup(job.policy.limits.processes);
    // The mount namespace is stage 2's alone (it pivots its root), so this
    // stage keeps the host's view to leave its cgroup afterwards.
    let mut flags =
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    if !matches!(job.policy.network, Network::TcpConnect(_)) {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    new_user_namespace(flags).map_err(|e| format!("cannot create namespaces (user namespaces disabled?): {e}"))?;
    let status = Command::new("/proc/self/exe")
        .arg(LAUNCH_ARG)
        .env(STAGE_ENV, "2")
        .env(
            PIDS_ENV,
            match (&cgroup, nix::unistd::getuid().is_root()) {
                (Some(_), _) => "a pids cgroup",
                (None, false) => "RLIMIT_NPROC",
                (None, true) => "nothing (root without a pids cgroup)",
            },
        )
        .status()
        .map_err(|e| format!("cannot start the sandbox's first process: {e}"))?;
    if let Some(dir) = cgroup {
        leave_cgroup(&dir);
    }
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// The directory of the pids cgroup a launcher with pid `pid` makes under
/// the cgroup this process is in, if the host has a pids controller.
pub fn pids_cgroup_dir(pid: u32) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in mountinfo.lines() {
        // ... mount-point ... - fstype source super-options
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split(' ').nth(4)?;
        let mut right = right.split(' ');
        let (fstype, options) = (right.next()?, right.nth(1).unwrap_or(""));
        let path = match fstype {
            "cgroup" if options.split(',').any(|o| o == "pids") => {
                own.lines().find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))
            }
            "cgroup2" => {
                let path = own.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string))?;
                let control = Path::new(mount_point).join(path.trim_start_matches('/')).join("cgroup.subtree_control");
                let enabled = std::fs::read_to_string(control).ok()?;
                enabled.split_whitespace().any(|c| c == "pids").then_some(path)
            }
            _ => None,
        };
        if let Some(path) = path {
            return Some(
                Path::new(mount_point).join(path.trim_start_matches('/')).join(format!("libos-sandbox-{pid}")),
            );
        }
    }
    None
}

/// Puts this process (and so the whole sandbox) in a pids cgroup of its own
/// limited to `max` tasks. `RLIMIT_NPROC` does not bind root, so this is
/// what holds a fork bomb when libos runs as root; without a pids
/// controller only the rlimit holds (for other users).
fn join_pids_cgroup(max: u64) -> Option<PathBuf> {
    let dir = pids_cgroup_dir(std::process::id())?;
    std::fs::create_dir(&dir).ok()?;
    let joined = std::fs::write(dir.join("pids.max"), max.to_string())
        .and_then(|()| std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string()));
    if joined.is_err() {
        let _ = std::fs::remove_dir(&dir);
        return None;
    }
    Some(dir)
}

/// Moves back to the parent cgroup and removes the sandbox's (empty by now:
/// PID 1 of the sandbox has exited, which ended everything in it).
fn leave_cgroup(dir: &Path) {
    if let Some(parent) = dir.parent() {
        let _ = std::fs::write(parent.join("cgroup.procs"), std::process::id().to_string());
    }
    let _ = std::fs::remove_dir(dir);
}

fn inside(job: &Job) -> Result<i32, String> {
    die_with_parent()?;
    // Still the host's file system: the handover socket is reachable.
    if job.policy.network == Network::Proxy {
        let handover = job.proxy.as_ref().ok_or("the policy has a proxy but the job names no handover")?;
        hand_over_listener(handover)?;
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("cannot create the mount namespace: {e}"))?;
    // Its own UTS namespace: the host's name stays the host's.
    nix::unistd::sethostname("libos-sandbox").map_err(|e| format!("sethostname: {e}"))?;
    // The job is in this process's environment; the program gets its own.
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>).map_err(|e| format!("mount: {e}"))?;
    // This PID namespace's /proc, for binding roots through their descriptors.
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), hardened, None::<&str>).map_err(|e| format!("mount /proc: {e}"))?;
    let temp = minimal_root(&job.policy)?;
    let masked = mask_protected(&job.policy)?;
    // What lies beneath a covered path is covered with it.
    let uncovered = job.policy.protected.iter().filter(|p| !masked.iter().any(|m| p.starts_with(m)));
    let policy = Policy { protected: uncovered.cloned().collect(), ..job.policy.clone() };
    limits(&policy)?;
    let probe = job.argv.is_empty();
    out_of_reach()?;
    let status = landlock(&policy, temp.as_deref())?;
    seccomp()?;
    no_inherited_descriptors()?;
    if probe {
        let pids = std::env::var(PIDS_ENV).unwrap_or_default();
        println!("{PROBE_OK} {status}; processes limited by {pids}");
        return Ok(0);
    }
    let deadline = Duration::from_millis(job.deadline_ms);
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        // PID 1 leaving ends everything in the namespace.
        std::process::exit(124);
    });
    let mut cmd = Command::new(&job.argv[0]);
    cmd.args(&job.argv[1..]).current_dir(&job.cwd).env_clear().envs(job.env.iter().map(|(k, v)| (k, v)));
    if let Some(temp) = temp.filter(|t| t != Path::new("/tmp")) {
        cmd.env("TMPDIR", temp);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{MESSAGE_PREFIX}cannot run `{}`: {}", job.argv[0], reason(&e));
            return Ok(EXIT_NOT_RUN);
        }
    };
    let status = child.wait().map_err(|e| format!("waiting for the program: {e}"))?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// A lowercase, short reason for an I/O error.
pub(crate) fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text.to_lowercase(),
    }
}

/// Builds the sandbox's file system from nothing and moves into it: a
/// tmpfs root holding only the policy's roots, bound at their own paths
/// (read roots read-only; none lets a set-uid bit work), a few device
/// files, a fresh `/proc`, and a private temporary directory. Nothing else
/// of the host exists inside: not its sockets (a PostgreSQL or Docker
/// socket is a file like any other), not `/etc/shadow`, not `/sys`, and the
/// system files that are there cannot be changed (`chmod`, `utimes` and
/// extended attributes fail on a read-only mount). Returns the temporary
/// directory: `/tmp`, unless a root lies beneath it (a rule on `/tmp` would
/// then reach that root's protected paths too), when `/var/tmp` serves,
/// named by `TMPDIR`.
fn minimal_root(policy: &Policy) -> Result<Option<PathBuf>, String> {
    // Roots are opened first, before anything is mounted over them. A read
    // root inside a write root is the workspace's own (an agent's symlink
    // could point it anywhere): it is reachable as part of the workspace.
    let writes: Vec<&PathBuf> = policy.write.iter().collect();
    let mut roots: Vec<(PathBuf, std::os::fd::OwnedFd, bool)> = Vec::new();
    let wanted: Vec<(PathBuf, bool)> = policy
        .read
        .iter()
        .filter(|r| !writes.iter().any(|w| r.starts_with(w)))
        .map(|p| (p.clone(), false))
        .chain(policy.write.iter().map(|p| (p.clone(), true)))
        .chain(policy::DEVICES.iter().map(|d| (PathBuf::from(d), true)))
        .collect();
    // A system root that is a symlink into another root (`/bin -> usr/bin`
    // on a merged /usr) is recreated as that symlink: one mount fewer.
    let reads: Vec<PathBuf> = wanted.iter().filter(|(_, w)| !w).map(|(p, _)| p.clone()).collect();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (path, writable) in wanted {
        if !writable
            && let Ok(target) = std::fs::read_link(&path)
            && let Ok(resolved) = std::fs::canonicalize(&path)
            && reads.iter().any(|r| r != &path && resolved.starts_with(r) && std::fs::read_link(r).is_err())
        {
            links.push((path, target));
            continue;
        }
        let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if writable {
            flags |= OFlag::O_NOFOLLOW;
        }
        // A root that does not exist on this host (no /lib32) is left out.
        if let Ok(fd) = open(path.as_path(), flags, Mode::empty()) {
            if kind(&fd) == Some(SFlag::S_IFLNK) {
                continue;
            }
            roots.push((path, fd, writable));
        }
    }
    roots.sort_by_key(|(p, _, _)| p.components().count());
    let new_root = Path::new("/tmp");
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let tmpfs = |at: &Path, size: &str| {
        mount(Some("tmpfs"), at, Some("tmpfs"), flags, Some(format!("size={size},mode=0755").as_str()))
            .map_err(|e| format!("mount {}: {e}", at.display()))
    };
    tmpfs(new_root, "1m")?;
    let inner = |p: &Path| new_root.join(p.strip_prefix("/").unwrap_or(p));
    for (path, fd, writable) in &roots {
        let at = inner(path);
        let made = |e: std::io::Error| format!("cannot make {}: {e}", at.display());
        if kind(fd) == Some(SFlag::S_IFDIR) {
            std::fs::create_dir_all(&at).map_err(made)?;
        } else {
            if let Some(parent) = at.parent() {
                std::fs::create_dir_all(parent).map_err(made)?;
            }
            std::fs::write(&at, "").map_err(made)?;
        }
        let source = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd)));
        let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
        mount(Some(&source), &at, None::<&str>, bind, None::<&str>)
            .map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
        let mut again = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID;
        // Devices are read and written through a read-only mount as well;
        // only their modes and times (the host's) cannot change.
        if !writable || policy::DEVICES.iter().any(|d| path == Path::new(d)) {
            again |= MsFlags::MS_RDONLY;
        }
        mount(None::<&str>, &at, None::<&str>, again, None::<&str>)
            .map_err(|e| format!("cannot seal {}: {e}", path.display()))?;
    }
    for (path, target) in &links {
        let at = inner(path);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
        }
        std::os::unix::fs::symlink(target, &at).map_err(|e| format!("cannot make {}: {e}", at.display()))?;
    }
    for (link, target) in [
        ("dev/fd", "/proc/self/fd"),
        ("dev/stdin", "/proc/self/fd/0"),
        ("dev/stdout", "/proc/self/fd/1"),
        ("dev/stderr", "/proc/self/fd/2"),
    ] {
        let at = new_root.join(link);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
        }
        let _ = std::os::unix::fs::symlink(target, &at);
    }
    let proc_dir = new_root.join("proc");
    std::fs::create_dir_all(&proc_dir).map_err(|e| format!("cannot make /proc: {e}"))?;
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &proc_dir, Some("proc"), hardened, None::<&str>).map_err(|e| format!("mount /proc: {e}"))?;
    let all: Vec<&PathBuf> = roots.iter().map(|(p, _, _)| p).collect();
    let temp = ["/tmp", "/var/tmp"].into_iter().map(Path::new).find(|t| !all.iter().any(|r| r.starts_with(t)));
    if let Some(t) = temp {
        let at = inner(t);
        std::fs::create_dir_all(&at).map_err(|e| format!("cannot make {}: {e}", t.display()))?;
        mount(Some("tmpfs"), &at, Some("tmpfs"), flags, Some("size=256m,mode=1777"))
            .map_err(|e| format!("mount {}: {e}", t.display()))?;
    }
    drop(roots);
    let old = new_root.join(".old");
    std::fs::create_dir_all(&old).map_err(|e| format!("cannot make {}: {e}", old.display()))?;
    nix::unistd::pivot_root(new_root, &old).map_err(|e| format!("pivot_root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    nix::mount::umount2("/.old", nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| format!("umount the host's root: {e}"))?;
    let _ = std::fs::remove_dir("/.old");
    // The root itself becomes read-only: programs create nothing outside their roots.
    let seal = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(None::<&str>, "/", None::<&str>, seal, None::<&str>).map_err(|e| format!("cannot seal /: {e}"))?;
    Ok(temp.map(Path::to_path_buf))
}

/// Covers every protected path that exists under a root with something
/// empty and read-only, in this sandbox's mount namespace: an empty tmpfs
/// over a directory, `/dev/null` over a file. The real ones are untouched
/// and unreachable, and the directory around them stays the program's (a
/// mount point cannot be removed, renamed or replaced, and a Landlock
/// domain may not unmount). Returns the paths it covered; those that do
/// not exist yet are left to [`crate::policy::rules`].
fn mask_protected(policy: &Policy) -> Result<Vec<PathBuf>, String> {
    let roots: Vec<&PathBuf> = policy.read.iter().chain(&policy.write).collect();
    let mut masked: Vec<PathBuf> = Vec::new();
    // Shortest first, so a directory is covered before anything in it.
    let mut protected: Vec<&PathBuf> = policy.protected.iter().collect();
    protected.sort_by_key(|p| p.components().count());
    for path in protected {
        if !roots.iter().any(|r| path.starts_with(r) && path != *r) || masked.iter().any(|m| path.starts_with(m)) {
            continue;
        }
        // Opened without following any symlink on the way: a directory that
        // another sandbox swapped for a link leads nowhere, and the cover is
        // mounted on exactly what was opened.
        let opened = rustix::fs::openat2(
            rustix::fs::CWD,
            path.as_path(),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOFOLLOW,
            rustix::fs::Mode::empty(),
            rustix::fs::ResolveFlags::NO_SYMLINKS,
        );
        let fd = match opened {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(format!("cannot open {} without following links: {e}", path.display())),
        };
        let target = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)));
        let fail = |e: nix::Error| format!("cannot cover {}: {e}", path.display());
        match kind(&fd) {
            Some(SFlag::S_IFDIR) => {
                let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
                mount(Some("tmpfs"), &target, Some("tmpfs"), flags, Some("size=4k,mode=0555")).map_err(fail)?;
            }
            // A protected path that is a link is covered by its target's entry.
            Some(SFlag::S_IFLNK) | None => continue,
            Some(_) => {
                mount(Some("/dev/null"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(fail)?;
                let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                mount(None::<&str>, path.as_path(), None::<&str>, ro, None::<&str>).map_err(fail)?;
            }
        }
        masked.push(path.clone());
        // Its directories below the root become mount points too: a mount
        // point cannot be renamed or removed, so nothing can move the
        // covered file aside and plant another where it was.
        let root = roots.iter().filter(|r| path.starts_with(r)).max_by_key(|r| r.components().count());
        let mut dir = path.parent();
        while let (Some(d), Some(root)) = (dir, root) {
            if d == root.as_path() || !d.starts_with(root) {
                break;
            }
            let fd = rustix::fs::openat2(
                rustix::fs::CWD,
                d,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
                rustix::fs::ResolveFlags::NO_SYMLINKS,
            )
            .map_err(|e| format!("cannot open {} without following links: {e}", d.display()))?;
            let at = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)));
            mount(Some(&at), &at, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| format!("cannot pin {}: {e}", d.display()))?;
            dir = d.parent();
        }
    }
    Ok(masked)
}

/// Puts this process (PID 1) out of its program's reach: it becomes
/// non-dumpable, and enters a user namespace of its own (uid and gid mapped
/// to themselves) that the program inherits. The program's capabilities
/// are then those of the inner namespace, which count for nothing against
/// PID 1 (whose memory belongs to the outer one) or the mounts: it can
/// neither trace PID 1, read its `/proc` files, nor undo a mount.
fn out_of_reach() -> Result<(), String> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("prctl: {e}"))?;
    new_user_namespace(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("cannot create the inner user namespace: {e}"))
}

/// Enters the namespaces of `flags` (a new user namespace among them) and
/// maps this process's uid and gid to themselves in it, so files keep
/// their owners and nothing else of the host's ids exists inside.
fn new_user_namespace(flags: CloneFlags) -> Result<(), String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(flags).map_err(|e| e.to_string())?;
    let write = |file: &str, text: String| std::fs::write(file, text).map_err(|e| format!("cannot write {file}: {e}"));
    write("/proc/self/setgroups", "deny".to_string())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))
}

/// Seccomp filters for what Landlock does not cover and no program needs.
/// Refused with `EPERM`: set-uid and set-gid bits, however a file gets its
/// mode (`chmod` and its kin, `open`/`creat` with `O_CREAT`, `mknod`; the
/// workspace is on the host, and a set-uid file there would be the host
/// user's to run), making anything writable by others (a world-writable
/// workspace lets any local user plant libos's files), extended attributes
/// (`security.capability` would be a file capability on the host), and
/// the kernel's keyrings (the scheduler's session keyring would be shared).
/// Refused with `ENOSYS`, so programs fall back: io_uring (its operations
/// would bypass every other rule here) and `openat2` (its mode is out of a
/// filter's sight).
fn seccomp() -> Result<(), String> {
    use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};
    let err = |e: seccompiler::BackendError| format!("seccomp: {e}");
    let mode_bits = |arg: u8, bits: &[u64]| -> Result<Vec<SeccompRule>, String> {
        bits.iter()
            .map(|&bit| {
                let cond = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(bit), bit)
                    .map_err(err)?;
                SeccompRule::new(vec![cond]).map_err(err)
            })
            .collect()
    };
    // set-uid, set-gid, and (for chmod) writable by others.
    let modes: &[u64] = &[0o4000, 0o2000, 0o0002];
    let created: &[u64] = &[0o4000, 0o2000];
    let mut refused = std::collections::BTreeMap::new();
    refused.insert(libc::SYS_chmod, mode_bits(1, modes)?);
    refused.insert(libc::SYS_fchmod, mode_bits(1, modes)?);
    refused.insert(libc::SYS_fchmodat, mode_bits(2, modes)?);
    refused.insert(452, mode_bits(2, modes)?); // fchmodat2
    refused.insert(libc::SYS_open, mode_bits(2, created)?);
    refused.insert(libc::SYS_openat, mode_bits(3, created)?);
    refused.insert(libc::SYS_creat, mode_bits(1, created)?);
    refused.insert(libc::SYS_mknod, mode_bits(1, created)?);
    refused.insert(libc::SYS_mknodat, mode_bits(2, created)?);
    for call in [
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_fsetxattr,
        libc::SYS_removexattr,
        libc::SYS_lremovexattr,
        libc::SYS_fremovexattr,
        463, // setxattrat
        466, // removexattrat
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
    ] {
        refused.insert(call, Vec::new());
    }
    let mut missing = std::collections::BTreeMap::new();
    for call in [libc::SYS_io_uring_setup, libc::SYS_io_uring_enter, libc::SYS_io_uring_register, libc::SYS_openat2] {
        missing.insert(call, Vec::new());
    }
    let arch: seccompiler::TargetArch =
        std::env::consts::ARCH.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))?;
    for (rules, errno) in [(refused, libc::EPERM), (missing, libc::ENOSYS)] {
        let filter =
            SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch).map_err(err)?;
        let program: seccompiler::BpfProgram = filter.try_into().map_err(err)?;
        seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

/// The type of the file behind `fd`.
fn kind(fd: &std::os::fd::OwnedFd) -> Option<SFlag> {
    let mode = nix::sys::stat::fstat(fd.as_fd()).ok()?.st_mode;
    Some(SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()))
}

fn limits(policy: &Policy) -> Result<(), String> {
    let l = &policy.limits;
    for (resource, value, name) in [
        (Resource::RLIMIT_CPU, l.cpu_s, "cpu"),
        (Resource::RLIMIT_AS, l.memory_bytes, "memory"),
        (Resource::RLIMIT_NPROC, l.processes, "processes"),
        (Resource::RLIMIT_FSIZE, l.file_bytes, "file size"),
        (Resource::RLIMIT_NOFILE, l.open_files, "open files"),
        (Resource::RLIMIT_CORE, 0, "core"),
    ] {
        setrlimit(resource, value, value).map_err(|e| format!("cannot limit {name} to {value}: {e}"))?;
    }
    Ok(())
}

/// Enters the Landlock domain; returns how much of it the kernel enforces.
fn landlock(policy: &Policy, temp: Option<&Path>) -> Result<String, String> {
    let err = |e: landlock::RulesetError| format!("landlock: {e}");
    let abi = TARGET_ABI;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(err)?;
    match &policy.network {
        Network::TcpConnect(_) => {
            ruleset = ruleset.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp).map_err(err)?;
        }
        Network::Proxy => ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(err)?,
        Network::None => {}
    }
    let mut created = ruleset.create().map_err(err)?;
    let mut rules = policy::rules(policy);
    rules.push(Rule { path: "/proc".into(), access: Access::Read, follow: false });
    rules.extend(temp.map(|t| Rule { path: t.to_path_buf(), access: Access::Write, follow: false }));
    rules.extend(policy::DEVICES.iter().map(|d| Rule { path: d.into(), access: Access::Write, follow: true }));
    for rule in &rules {
        let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if !rule.follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        // A root that does not exist on this host (no /lib32) has no rule.
        let Ok(fd) = open(rule.path.as_path(), flags, Mode::empty()) else { continue };
        let kind = kind(&fd);
        if kind.is_none() || kind == Some(SFlag::S_IFLNK) {
            continue;
        }
        let access: BitFlags<AccessFs> = match rule.access {
            Access::ListOnly => AccessFs::ReadDir.into(),
            Access::Read => AccessFs::from_read(abi),
            Access::Write => AccessFs::from_all(abi),
        };
        let access = if kind == Some(SFlag::S_IFDIR) { access } else { access & AccessFs::from_file(abi) };
        if access.is_empty() {
            continue;
        }
        created = created.add_rule(PathBeneath::new(fd, access)).map_err(err)?;
    }
    let ports = match &policy.network {
        Network::TcpConnect(ports) => ports.clone(),
        Network::Proxy => vec![PROXY_PORT],
        Network::None => Vec::new(),
    };
    for port in ports {
        created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp)).map_err(err)?;
    }
    let status = created.restrict_self().map_err(err)?;
    let abi = match status.landlock {
        landlock::LandlockStatus::Available { effective_abi, .. } => format!("{}", effective_abi as i32),
        _ => "none".to_string(),
    };
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(format!("landlock abi {abi}, fully enforced")),
        RulesetStatus::PartiallyEnforced => Ok(format!("landlock abi {abi}, partially enforced")),
        RulesetStatus::NotEnforced => Err("landlock is not enforced by this kernel".to_string()),
    }
}

/// Brings the loopback up in this (new, empty) network namespace, listens
/// on the proxy's port there, and sends the listening socket to the
/// scheduler, whose proxy then accepts the program's connections. Nothing
/// of it stays open here.
fn hand_over_listener(handover: &ProxyHandover) -> Result<(), String> {
    loopback_up()?;
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, PROXY_PORT))
        .map_err(|e| format!("cannot listen for the proxy: {e}"))?;
    let stream = std::os::unix::net::UnixStream::connect(&handover.socket)
        .map_err(|e| format!("cannot reach the scheduler's proxy: {e}"))?;
    let fds = [listener.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
    let iov = [std::io::IoSlice::new(handover.token.as_bytes())];
    rustix::net::sendmsg(&stream, &iov, &mut control, rustix::net::SendFlags::empty())
        .map_err(|e| format!("cannot hand the proxy's listener over: {e}"))?;
    Ok(())
}

/// Sets the loopback (index 1 in every network namespace) up, by one
/// `RTM_NEWLINK` request over route netlink, and waits for its ack.
fn loopback_up() -> Result<(), String> {
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, netlink::SocketAddrNetlink};
    let err = |e: rustix::io::Errno| format!("cannot bring the loopback up: {e}");
    let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None).map_err(err)?;
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST_ACK: u16 = 1 | 4;
    const IFF_UP: u32 = 1;
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes()); // nlmsghdr: length,
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes()); // type,
    msg.extend_from_slice(&NLM_F_REQUEST_ACK.to_ne_bytes()); // flags,
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence,
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id;
    msg.extend_from_slice(&[0, 0, 0, 0]); // ifinfomsg: family, padding, type,
    msg.extend_from_slice(&1i32.to_ne_bytes()); // index (lo),
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // flags,
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // which flags change
    rustix::net::sendto(&fd, &msg, SendFlags::empty(), &SocketAddrNetlink::new(0, 0)).map_err(err)?;
    let mut ack = [0u8; 128];
    let (n, _) = rustix::net::recv(&fd, &mut ack[..], RecvFlags::empty()).map_err(err)?;
    // nlmsghdr, then NLMSG_ERROR's errno (0 is the ack).
    let error = ack.get(16..20).filter(|_| n >= 20).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match error {
        Some(0) => Ok(()),
        Some(e) => Err(err(rustix::io::Errno::from_raw_os_error(-e))),
        None => Err("cannot bring the loopback up: no answer from the kernel".to_string()),
    }
}

/// Closes every descriptor above standard error, first thing: the scheduler
/// (or whatever started it) may have leaked some, and a program must not
/// reach anything through a handle it was never given.
#[allow(unsafe_code)]
fn close_inherited() {
    // SAFETY: called first thing in a freshly executed launcher, which is
    // single-threaded and has opened nothing yet, so no Rust object owns a
    // descriptor above 2 and none can be used after this closes it.
    // close_range(2) takes no pointers.
    let _ = unsafe { libc::close_range(3, libc::c_uint::MAX, 0) };
}

/// Fails if a descriptor other than standard input, output and error was
/// inherited: a program must not reach anything through a leaked handle.
fn no_inherited_descriptors() -> Result<(), String> {
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|e| format!("cannot list descriptors: {e}"))?;
    let mut open: Vec<OsString> = dir.filter_map(Result::ok).map(|e| e.file_name()).collect();
    open.retain(|n| n.to_str().and_then(|s| s.parse::<i32>().ok()).is_some_and(|fd| fd > 2));
    // One of them is the listing itself; any other is a leak.
    if open.len() > 1 {
        return Err(format!("{} inherited descriptors are open; refusing to run", open.len() - 1));
    }
    Ok(())
}
