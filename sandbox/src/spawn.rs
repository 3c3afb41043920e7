//! An interactive program in the sandbox: started, talked to through its
//! standard input and output, and stopped by its owner (an MCP server is
//! one). [`crate::Sandbox::run`] is for programs that run to completion.
//!
//! The sequence:
//! 1. A thread of its own starts the launcher (in a process group of its
//!    own, standard input and output piped) and then waits for it. The
//!    launcher asks to die with the *thread* that started it, so that thread
//!    must live as long as the program does; a pool thread would not.
//! 2. Standard error is read as it comes, keeping only its last
//!    [`STDERR_TAIL_BYTES`]: what a dying server said last is what explains
//!    its death.
//! 3. The owner stops it by [`Spawned::kill`] or by dropping the handle:
//!    the whole process group is killed (which takes the sandbox's PID 1,
//!    and so everything inside), then whatever is left in its cgroup, and the
//!    cgroup is removed. When the program exits by itself, what it left
//!    in its process group is killed before the launcher is reaped; a
//!    reaped launcher's group is never signalled, so a reused pid is never hit.
//!
//! There is no time limit unless the caller sets one: the sandbox's last
//! stop is then so far away that it never comes.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use crate::launch::{Job, reason};
use crate::net::NetGate;
use crate::policy::Policy;
use crate::proxy::Proxy;
use crate::run::{End, Mode, Sandbox, SandboxError, empty_cgroup, launcher_command, start_proxy};

/// Bytes of standard error kept (the last ones).
pub const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// An interactive program to start.
#[derive(Debug, Clone, Copy)]
pub struct Interactive<'a> {
    /// The program (a name looked up on `PATH` in `env`) and its arguments; not empty.
    pub argv: &'a [String],
    /// Its working directory.
    pub cwd: &'a Path,
    /// Its whole environment.
    pub env: &'a [(String, String)],
    /// What it may reach.
    pub policy: &'a Policy,
    /// How long it may run at most; `None`: until its owner stops it.
    pub deadline: Option<Duration>,
    /// What decides its connections, when the policy's network is [`crate::Network::Proxy`].
    pub net: Option<&'a Arc<dyn NetGate>>,
}

/// A running interactive program. Dropping it kills the program and
/// everything it started.
#[derive(Debug)]
pub struct Spawned {
    /// Its standard input (`None` once taken).
    pub stdin: Option<ChildStdin>,
    /// Its standard output (`None` once taken).
    pub stdout: Option<ChildStdout>,
    stderr: Arc<(Mutex<Tail>, Condvar)>,
    state: Arc<(Mutex<Life>, Condvar)>,
    group: i32,
    confined: bool,
    /// Its network proxy, stopped when this is dropped.
    _proxy: Option<Proxy>,
}

#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
    total: usize,
    /// The stream reached its end (everything written was read).
    closed: bool,
}

/// How long, once the program has ended, its last words are waited for
/// (the reader is a thread of its own and may not have run yet).
const STDERR_DRAIN: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Life {
    Running,
    /// It exited (and was reaped): how.
    Ended(End),
}

impl Sandbox {
    /// Starts `cmd` confined by its policy, with standard input and output
    /// piped to the caller, and returns at once.
    pub fn spawn(&self, cmd: &Interactive<'_>) -> Result<Spawned, SandboxError> {
        if cmd.argv.is_empty() {
            return Err(SandboxError::Spawn("no program to run".to_string()));
        }
        let mut proxy = None;
        let (mut command, confined) = match self.mode() {
            Mode::Unavailable(reason) => return Err(SandboxError::Unavailable(reason.clone())),
            Mode::Confined { launcher, .. } => {
                let mut job = Job {
                    argv: cmd.argv.to_vec(),
                    cwd: cmd.cwd.to_path_buf(),
                    env: cmd.env.to_vec(),
                    policy: cmd.policy.clone(),
                    // The launcher's own last stop; u64::MAX milliseconds never comes.
                    deadline_ms: cmd.deadline.map_or(u64::MAX, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    proxy: None,
                };
                proxy = start_proxy(&mut job, cmd.net)?;
                (launcher_command(launcher, &job)?, true)
            }
            Mode::Unconfined => {
                let mut c = Command::new(&cmd.argv[0]);
                c.args(&cmd.argv[1..]).current_dir(cmd.cwd).env_clear().envs(cmd.env.iter().map(|(k, v)| (k, v)));
                (c, false)
            }
        };
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let state = Arc::new((Mutex::new(Life::Running), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        let life = state.clone();
        std::thread::Builder::new()
            .name("libos-sandbox-waiter".to_string())
            .spawn(move || {
                let mut child = match command.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(SandboxError::Spawn(format!("cannot start: {}", reason(&e)))));
                        return;
                    }
                };
                let pipes = (child.id(), child.stdin.take(), child.stdout.take(), child.stderr.take());
                if tx.send(Ok(pipes)).is_err() {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(child.id() as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                // Wait without reaping, then reap under the lock: a killer
                // holding the lock sees either a live (or zombie) launcher
                // whose pid cannot have been reused, or `Ended`.
                let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
                while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitid(nix::sys::wait::Id::Pid(pid), flags) {}
                let (lock, cvar) = &*life;
                let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                // What it left in its group goes with it (unconfined programs
                // can leave some; in the sandbox PID 1's exit ended them). The
                // unreaped leader keeps the group's id from being reused.
                let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                let end = match child.wait() {
                    Ok(s) => match (s.code(), s.signal()) {
                        (Some(code), _) => End::Exited(code),
                        (None, Some(sig)) => End::Signalled(sig),
                        (None, None) => End::Exited(-1),
                    },
                    Err(e) => End::NotRun(format!("waiting for the program: {}", reason(&e))),
                };
                *guard = Life::Ended(end);
                cvar.notify_all();
            })
            .map_err(|e| SandboxError::Spawn(format!("cannot start a waiter thread: {}", reason(&e))))?;
        let (pid, stdin, stdout, stderr) = rx
            .recv()
            .map_err(|_| SandboxError::Spawn("the waiter thread ended before the program started".to_string()))??;
        let tail = Arc::new((Mutex::new(Tail::default()), Condvar::new()));
        if let Some(stderr) = stderr {
            keep_tail(stderr, tail.clone());
        }
        Ok(Spawned { stdin, stdout, stderr: tail, state, group: pid as i32, confined, _proxy: proxy })
    }
}

impl Spawned {
    /// How it ended, if it has.
    pub fn ended(&self) -> Option<End> {
        let guard = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*guard {
            Life::Running => None,
            Life::Ended(end) => Some(end.clone()),
        }
    }

    /// Waits at most `limit` for it to end; how it ended, if it has.
    pub fn wait_timeout(&self, limit: Duration) -> Option<End> {
        let (lock, cvar) = &*self.state;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) =
            cvar.wait_timeout_while(guard, limit, |l| *l == Life::Running).unwrap_or_else(|e| e.into_inner());
        match &*guard {
            Life::Running => None,
            Life::Ended(end) => Some(end.clone()),
        }
    }

    /// The last bytes it wrote to standard error (lossy UTF-8). Once it
    /// has ended, what it wrote last is waited for, briefly, so a dead
    /// program's last words are not lost to a reader that has not run yet.
    pub fn stderr_tail(&self) -> String {
        let ended = self.ended().is_some();
        let (lock, cvar) = &*self.stderr;
        let mut tail = lock.lock().unwrap_or_else(|e| e.into_inner());
        if ended {
            tail = cvar.wait_timeout_while(tail, STDERR_DRAIN, |t| !t.closed).unwrap_or_else(|e| e.into_inner()).0;
        }
        String::from_utf8_lossy(&tail.bytes).into_owned()
    }

    /// The last non-empty line it wrote to standard error.
    pub fn last_stderr_line(&self) -> Option<String> {
        let text = self.stderr_tail();
        text.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
    }

    /// Kills it and everything it started; the sandbox's cgroup is emptied
    /// and removed. Idempotent.
    pub fn kill(&self) {
        {
            let guard = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
            if *guard == Life::Running {
                let _ =
                    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.group), nix::sys::signal::Signal::SIGKILL);
            }
        }
        if self.confined
            && let Some(dir) = crate::launch::pids_cgroup_dir(self.group as u32)
        {
            // Wait (briefly) for the launcher to go, so the cgroup can be removed.
            let _ = self.wait_timeout(Duration::from_secs(2));
            empty_cgroup(&dir);
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

fn keep_tail(mut r: impl Read + Send + 'static, shared: Arc<(Mutex<Tail>, Condvar)>) {
    let _ = std::thread::Builder::new().name("libos-sandbox-stderr".to_string()).spawn(move || {
        let (tail, cvar) = &*shared;
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let Ok(mut t) = tail.lock() else { break };
            t.total += n;
            t.bytes.extend_from_slice(&buf[..n]);
            if t.bytes.len() > STDERR_TAIL_BYTES {
                let cut = t.bytes.len() - STDERR_TAIL_BYTES;
                t.bytes.drain(..cut);
            }
        }
        tail.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        cvar.notify_all();
    });
}
