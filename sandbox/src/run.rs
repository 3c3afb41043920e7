//! Running a program in the sandbox, from the scheduler's side.
//!
//! The launcher is started in a process group of its own, with no standard
//! input and its output piped. Output is read as it comes, each stream kept
//! up to a bound. The run ends when the program exits, when its time limit
//! passes, or when the caller cancels it (the process was killed, the
//! scheduler is stopping); in the last two cases the whole group is killed,
//! which takes the sandbox's PID 1 and so everything inside with it. Output
//! is not waited for past the end: what was read by then is what is shown.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::launch::{self, Job, ProxyHandover, reason};
use crate::net::NetGate;
use crate::policy::{Network, Policy};
use crate::proxy::{Attempt, Handover, PROXY_PORT, Proxy};

/// Bytes of standard output and of standard error kept (each).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// How long output is still read after the program ended.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// How long the sandbox outlives its time limit at most, if the caller
/// that should stop it is gone.
const BACKSTOP_GRACE: Duration = Duration::from_secs(5);

/// Why a sandbox cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// No launcher binary was found.
    #[error("the sandbox launcher was not found (looked for {0}); set LIBOS_SANDBOX_LAUNCHER")]
    NoLauncher(String),
    /// The launcher ran but could not build the sandbox on this host.
    #[error("the sandbox cannot be set up on this host: {0}")]
    Unsupported(String),
    /// The sandbox is not available and running unconfined was not allowed.
    #[error("programs are not run: the sandbox is unavailable ({0}); the operator may allow unconfined programs")]
    Unavailable(String),
    /// The program could not be started or waited for.
    #[error("{0}")]
    Spawn(String),
}

/// The launcher program and the arguments that make it one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    program: PathBuf,
    args: Vec<String>,
}

impl Launcher {
    /// `program` is a binary that calls [`launch::main`] when
    /// [`launch::invoked`] (the `libos` CLI does, and so does `libos-sandbox`).
    pub fn new(program: impl Into<PathBuf>) -> Launcher {
        Launcher { program: program.into(), args: vec![launch::LAUNCH_ARG.to_string()] }
    }

    /// Finds `libos-sandbox`: `LIBOS_SANDBOX_LAUNCHER`, then beside the
    /// running program (and one directory up, where cargo puts a test's
    /// binaries), then on `PATH`.
    pub fn find() -> Result<Launcher, SandboxError> {
        if let Some(path) = std::env::var_os("LIBOS_SANDBOX_LAUNCHER").filter(|p| !p.is_empty()) {
            return Ok(Launcher::new(PathBuf::from(path)));
        }
        let name = "libos-sandbox";
        let mut places = Vec::new();
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
        {
            places.push(dir.join(name));
            if let Some(up) = dir.parent() {
                places.push(up.join(name));
            }
        }
        if let Some(path) = std::env::var_os("PATH") {
            places.extend(std::env::split_paths(&path).map(|d| d.join(name)));
        }
        places
            .iter()
            .find(|p| p.is_file())
            .map(|p| Launcher::new(p.clone()))
            .ok_or_else(|| SandboxError::NoLauncher(format!("{name} beside {}", exe_name())))
    }

    /// The launcher's program.
    pub fn program(&self) -> &Path {
        &self.program
    }
}

impl Sandbox {
    /// The launcher's program, when programs run confined: libos protects
    /// it like its own binary (a replaced launcher would run unconfined).
    pub fn launcher(&self) -> Option<&Path> {
        match &*self.mode {
            Mode::Confined { launcher, .. } => Some(launcher.program()),
            Mode::Unconfined | Mode::Unavailable(_) => None,
        }
    }
}

fn exe_name() -> String {
    std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "this program".to_string())
}

/// How programs are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// In the sandbox, through this launcher; `report` is what the probe found.
    Confined { launcher: Launcher, report: String },
    /// Without a sandbox, because the operator said so.
    Unconfined,
    /// Not at all: the sandbox is unavailable, and running unconfined was not allowed.
    Unavailable(String),
}

/// Runs programs on behalf of agents. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    mode: Arc<Mode>,
}

impl Sandbox {
    /// A sandbox through `launcher`, probed once: the launcher builds a
    /// sandbox and reports what the kernel enforces.
    pub fn confined(launcher: Launcher) -> Result<Sandbox, SandboxError> {
        let report = probe(&launcher)?;
        Ok(Sandbox { mode: Arc::new(Mode::Confined { launcher, report }) })
    }

    /// The sandbox this host offers (finding the launcher and probing it),
    /// or one that refuses every program with the reason it is unavailable.
    pub fn detect() -> Sandbox {
        match Launcher::find().and_then(Sandbox::confined) {
            Ok(s) => s,
            Err(e) => Sandbox::unavailable(e.to_string()),
        }
    }

    /// Runs nothing: every run fails with `reason`.
    pub fn unavailable(reason: impl Into<String>) -> Sandbox {
        Sandbox { mode: Arc::new(Mode::Unavailable(reason.into())) }
    }

    /// Runs programs without a sandbox (an operator's explicit choice):
    /// only the time limit, the process group and the cleared environment hold.
    pub fn unconfined() -> Sandbox {
        Sandbox { mode: Arc::new(Mode::Unconfined) }
    }

    pub(crate) fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Whether programs run confined.
    pub fn is_confined(&self) -> bool {
        matches!(*self.mode, Mode::Confined { .. })
    }

    /// One line for people: what confines programs here.
    pub fn describe(&self) -> String {
        match &*self.mode {
            Mode::Confined { report, .. } => {
                format!("confined ({report}; user, pid, mount and network namespaces; resource limits)")
            }
            Mode::Unconfined => "unconfined: programs run with the scheduler's own authority".to_string(),
            Mode::Unavailable(reason) => format!("unavailable: {reason}"),
        }
    }

    /// Runs `argv` in `cwd` with exactly `env`, confined by `policy`, for
    /// at most `timeout`, or until `cancel` fires.
    pub fn run(&self, cmd: &Cmd<'_>, cancel: &Cancel) -> Result<Output, SandboxError> {
        if cmd.argv.is_empty() {
            return Err(SandboxError::Spawn("no program to run".to_string()));
        }
        let mut proxy = None;
        let mut command = match &*self.mode {
            Mode::Unavailable(reason) => return Err(SandboxError::Unavailable(reason.clone())),
            Mode::Confined { launcher, .. } => {
                let mut job = Job {
                    argv: cmd.argv.to_vec(),
                    cwd: cmd.cwd.to_path_buf(),
                    env: cmd.env.to_vec(),
                    policy: cmd.policy.clone(),
                    deadline_ms: (cmd.timeout + BACKSTOP_GRACE).as_millis() as u64,
                    proxy: None,
                };
                proxy = start_proxy(&mut job, cmd.net)?;
                launcher_command(launcher, &job)?
            }
            Mode::Unconfined => {
                let mut c = Command::new(&cmd.argv[0]);
                c.args(&cmd.argv[1..]).current_dir(cmd.cwd).env_clear().envs(cmd.env.iter().map(|(k, v)| (k, v)));
                c
            }
        };
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| SandboxError::Spawn(format!("cannot start: {}", reason(&e))))?;
        let launcher_pid = child.id();
        let group = nix::unistd::Pid::from_raw(launcher_pid as i32);
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().map(|s| drain(s, tx.clone()));
        let stderr = child.stderr.take().map(|s| drain(s, tx.clone()));
        let waiter = tx.clone();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = waiter.send(Event::Exited(status.map_err(|e| reason(&e))));
        });
        cancel.attach(tx);
        let deadline = started + cmd.timeout;
        let mut end = None;
        let mut open_streams = usize::from(stdout.is_some()) + usize::from(stderr.is_some());
        let mut exited_at: Option<Instant> = None;
        let mut kills = 0u32;
        loop {
            let limit = match (end.is_some(), exited_at) {
                (true, Some(at)) => (at + DRAIN_GRACE).saturating_duration_since(Instant::now()),
                (true, None) => DRAIN_GRACE,
                (false, _) => deadline.saturating_duration_since(Instant::now()),
            };
            if end.is_some() && open_streams == 0 {
                break;
            }
            match rx.recv_timeout(limit) {
                Ok(Event::Exited(status)) => {
                    exited_at = Some(Instant::now());
                    if end.is_none() {
                        end = Some(match status {
                            Ok(s) => match (s.code(), s.signal()) {
                                (Some(code), _) => End::Exited(code),
                                (None, Some(sig)) => End::Signalled(sig),
                                (None, None) => End::Exited(-1),
                            },
                            Err(e) => return Err(SandboxError::Spawn(format!("waiting for the program: {e}"))),
                        });
                    }
                    // Unconfined programs may have left children in the group.
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                }
                Ok(Event::Closed) => open_streams = open_streams.saturating_sub(1),
                Ok(Event::Cancel) if end.is_none() => {
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                    end = Some(End::Cancelled);
                }
                Ok(Event::Cancel) => {}
                Err(RecvTimeoutError::Timeout) if end.is_none() => {
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                    end = Some(End::TimedOut);
                }
                Err(RecvTimeoutError::Timeout) if exited_at.is_none() && kills < 25 => {
                    // Killed, but not reaped yet: keep waiting for the exit, a while.
                    kills += 1;
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                }
                Err(_) => break,
            }
        }
        // Whatever is still in the sandbox's cgroup (its launcher was killed,
        // or something held PID 1 back) is killed now, and the cgroup removed.
        if self.is_confined()
            && let Some(dir) = launch::pids_cgroup_dir(launcher_pid)
        {
            empty_cgroup(&dir);
        }
        let take = |s: Option<Arc<Mutex<Captured>>>| {
            s.map(|c| c.lock().map(|c| c.clone()).unwrap_or_default()).unwrap_or_default()
        };
        let (network, network_more) = proxy.map(Proxy::finish).unwrap_or_default();
        let mut output = Output {
            end: end.unwrap_or(End::Exited(-1)),
            stdout: take(stdout),
            stderr: take(stderr),
            elapsed: started.elapsed(),
            network,
            network_more,
        };
        if self.is_confined()
            && let End::Exited(code) = output.end
            && (code == launch::EXIT_SETUP || code == launch::EXIT_NOT_RUN)
            && let Some(message) = launcher_message(&output.stderr.kept)
        {
            output.end = End::NotRun(message);
        }
        Ok(output)
    }
}

/// Starts the proxy a job's [`Network::Proxy`] needs (and points the
/// program at it); nothing for other networks.
pub(crate) fn start_proxy(job: &mut Job, net: Option<&Arc<dyn NetGate>>) -> Result<Option<Proxy>, SandboxError> {
    if job.policy.network != Network::Proxy {
        return Ok(None);
    }
    let gate = net.ok_or_else(|| {
        SandboxError::Spawn("the policy has a network proxy but nothing decides its connections".into())
    })?;
    let handover = Handover::new().map_err(SandboxError::Spawn)?;
    job.proxy = Some(ProxyHandover { socket: handover.socket(), token: handover.token().to_string() });
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    for var in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        if !job.env.iter().any(|(k, _)| k == var) {
            job.env.push((var.to_string(), url.clone()));
        }
    }
    Ok(Some(Proxy::start(handover, gate.clone())))
}

/// Kills every process in the cgroup `dir` until none is left (bounded),
/// then removes it. A process cannot leave a cgroup without writing to the
/// cgroup file system, which no sandbox reaches.
pub(crate) fn empty_cgroup(dir: &Path) {
    for _ in 0..50 {
        let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) else { return };
        let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = std::fs::remove_dir(dir);
}

/// The launcher's own message, if the program never ran.
fn launcher_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let last = text.lines().rev().find(|l| l.starts_with(launch::MESSAGE_PREFIX))?;
    Some(last.trim_start_matches(launch::MESSAGE_PREFIX).to_string())
}

pub(crate) fn launcher_command(launcher: &Launcher, job: &Job) -> Result<Command, SandboxError> {
    let text = serde_json::to_string(job).map_err(|e| SandboxError::Spawn(format!("cannot encode the job: {e}")))?;
    let mut c = Command::new(&launcher.program);
    c.args(&launcher.args).env_clear().env(launch::JOB_ENV, text).current_dir("/");
    Ok(c)
}

/// Removes the empty cgroups of launchers that are gone (a scheduler killed
/// while its programs ran leaves them behind; a non-empty one is kept).
fn sweep_cgroups() {
    let Some(dir) = launch::pids_cgroup_dir(std::process::id()) else { return };
    let Some(parent) = dir.parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("libos-sandbox-")) else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

fn probe(launcher: &Launcher) -> Result<String, SandboxError> {
    sweep_cgroups();
    let dir = std::env::temp_dir();
    let job = Job {
        argv: Vec::new(),
        cwd: dir.clone(),
        env: Vec::new(),
        policy: Policy::for_workspace(&dir, Vec::new(), None),
        deadline_ms: 10_000,
        proxy: None,
    };
    let out = launcher_command(launcher, &job)?
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SandboxError::NoLauncher(format!("{} ({})", launcher.program.display(), reason(&e))))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.strip_prefix(launch::PROBE_OK)) {
        Some(report) if out.status.success() => Ok(report.trim().to_string()),
        _ => Err(SandboxError::Unsupported(
            launcher_message(&out.stderr).unwrap_or_else(|| format!("the launcher probe failed ({})", out.status)),
        )),
    }
}

/// A program to run.
#[derive(Debug, Clone, Copy)]
pub struct Cmd<'a> {
    /// The program (a name looked up on `PATH` in `env`) and its arguments; not empty.
    pub argv: &'a [String],
    /// Its working directory.
    pub cwd: &'a Path,
    /// Its whole environment.
    pub env: &'a [(String, String)],
    /// What it may reach.
    pub policy: &'a Policy,
    /// How long it may run.
    pub timeout: Duration,
    /// What decides its connections, when the policy's network is [`Network::Proxy`].
    pub net: Option<&'a Arc<dyn NetGate>>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The program exited with this status (128 + N: it was killed by signal N inside the sandbox).
    Exited(i32),
    /// The program (unconfined) was killed by this signal.
    Signalled(i32),
    /// Its time limit passed: everything it started was killed.
    TimedOut,
    /// The caller cancelled it: everything it started was killed.
    Cancelled,
    /// The program never ran; the launcher says why.
    NotRun(String),
}

/// One output stream, bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The first [`MAX_OUTPUT_BYTES`].
    pub kept: Vec<u8>,
    /// How many bytes the program wrote in all (as far as they were read).
    pub total: usize,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub end: End,
    /// Its standard output.
    pub stdout: Captured,
    /// Its standard error.
    pub stderr: Captured,
    /// How long it took.
    pub elapsed: Duration,
    /// The connections it asked the proxy for, in the order they were decided.
    pub network: Vec<Attempt>,
    /// How many more it asked for than are kept in `network`.
    pub network_more: usize,
}

enum Event {
    Exited(Result<std::process::ExitStatus, String>),
    Closed,
    Cancel,
}

fn drain(mut r: impl Read + Send + 'static, done: Sender<Event>) -> Arc<Mutex<Captured>> {
    let out = Arc::new(Mutex::new(Captured::default()));
    let shared = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let Ok(mut c) = shared.lock() else { break };
            c.total += n;
            let room = MAX_OUTPUT_BYTES.saturating_sub(c.kept.len());
            c.kept.extend_from_slice(&buf[..n.min(room)]);
        }
        let _ = done.send(Event::Closed);
    });
    out
}

/// Stops a run from another thread: the process that asked for it was
/// killed, or the scheduler is stopping. Cancelling before the run starts
/// cancels it as soon as it does.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<Mutex<CancelState>>,
}

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    waiting: Vec<Sender<Event>>,
    /// Callbacks of callers that are not runs (an HTTP request in flight).
    hooks: Vec<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for CancelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelState")
            .field("cancelled", &self.cancelled)
            .field("waiting", &self.waiting.len())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Event::Exited(_) => "exited",
            Event::Closed => "closed",
            Event::Cancel => "cancel",
        })
    }
}

impl Cancel {
    /// A token that has not fired.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Fires: every run attached to it is killed.
    pub fn cancel(&self) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        state.cancelled = true;
        for tx in state.waiting.drain(..) {
            let _ = tx.send(Event::Cancel);
        }
        let hooks = std::mem::take(&mut state.hooks);
        drop(state);
        for hook in hooks {
            hook();
        }
    }

    /// Calls `hook` once when the token fires (at once if it has fired):
    /// how work that is not a program (an HTTP request) hears of a cancel.
    /// It runs on the cancelling thread, so it should only signal.
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if state.cancelled {
            drop(state);
            hook();
        } else {
            state.hooks.push(Box::new(hook));
        }
    }

    fn attach(&self, tx: Sender<Event>) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if state.cancelled {
            let _ = tx.send(Event::Cancel);
        } else {
            state.waiting.push(tx);
        }
    }
}

/// Cancels a token when dropped: a quantum holds one, so a run outlives
/// neither the quantum nor the scheduler that dropped it.
#[derive(Debug)]
pub struct CancelOnDrop(pub Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
