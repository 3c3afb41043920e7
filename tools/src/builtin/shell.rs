//! `shell(argv, timeout_s)`: run one program, without a shell, in the workspace.
//!
//! `argv[0]` is a program name looked up on `PATH` (never a path), so the
//! capability `shell:<argv[0]>` names exactly what runs; the arguments go to
//! it as given, with no shell to expand them. It runs in the workspace root
//! in the sandbox (`libos-sandbox`): the host's kernel lets it read and
//! write the workspace (less libos's own files), read the system, and reach
//! nothing else, not other processes, not the network. A process with
//! `net:` grants gives its programs one way out, an HTTP proxy that decides
//! each destination against those grants; each attempt is listed in the
//! result (and so in the audit). Its environment is
//! cleared (only `PATH`, and `HOME` set to the workspace), it has no
//! standard input, its output is bounded, and its time is limited by the
//! call and by the process's `wall_time` budget: past it, it is killed with
//! everything it started. A program's authority inside the workspace is
//! still everything that program can do, which is why shipped images put
//! `shell` behind approval.

use std::time::Duration;

use libos_sandbox::{Captured, Cmd, End, Limits, Network, Policy};

use libos_core::caps::{Resource, ResourceKind, Right};
use libos_core::syscall::Need;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
use crate::tool::Tool;

/// Bytes of stdout and of stderr kept (each).
pub const MAX_OUTPUT_BYTES: usize = libos_sandbox::run::MAX_OUTPUT_BYTES;
/// Default time limit.
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// Longest time limit a call may ask for.
pub const MAX_TIMEOUT_S: u64 = 600;

/// Arguments of `shell`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellArgs {
    /// Program name, then its arguments, e.g. ["git", "status"].
    #[schemars(length(min = 1))]
    pub argv: Vec<String>,
    /// Seconds before it is killed (default 30, at most 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600))]
    pub timeout_s: Option<u64>,
}

impl ShellArgs {
    /// Checks the shape: a program name, no NUL bytes, a sane timeout.
    pub fn validate(&self) -> Result<(), String> {
        let Some(program) = self.argv.first() else {
            return Err("argv is empty: give the program and its arguments".to_string());
        };
        if program.is_empty() || program.contains('/') || program.contains('\\') {
            return Err(format!("argv[0] must be a program name found on PATH, not `{program}`"));
        }
        if self.argv.iter().any(|a| a.contains('\0')) {
            return Err("an argument contains a NUL byte".to_string());
        }
        if self.timeout_s.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_S) {
            return Err(format!("timeout_s must be between 1 and {MAX_TIMEOUT_S}"));
        }
        Ok(())
    }
}

fn show(name: &str, c: &Captured) -> String {
    let text = String::from_utf8_lossy(&c.kept);
    let mut out = format!("{name}:\n{text}");
    if c.total > c.kept.len() {
        out.push_str(&format!("\n[... {name} cut: {} bytes, the first {} shown]", c.total, c.kept.len()));
    }
    out
}

fn run_it(a: &ShellArgs, ctx: &ToolContext) -> ToolOutput {
    if let Err(e) = a.validate() {
        return ToolOutput::Error(e);
    }
    run_program(&a.argv, Duration::from_secs(a.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S)), ctx)
}

/// Runs `argv` in the sandbox in the workspace, for at most `asked` (and
/// never past the process's wall time), and shows how it ended, its
/// bounded output and its network attempts. `shell` and operator-defined
/// command tools run programs this one way.
pub(crate) fn run_program(argv: &[String], asked: Duration, ctx: &ToolContext) -> ToolOutput {
    let root = ctx.workspace.root();
    // A program never outlives its process's wall-time budget.
    let (limit, by_budget) = match ctx.time_left {
        Some(left) if left < asked => (left, true),
        _ => (asked, false),
    };
    if limit.is_zero() {
        return ToolOutput::Error(format!("`{}` was not run: no wall time is left in the budget", argv[0]));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let env = vec![("PATH".to_string(), path.clone()), ("HOME".to_string(), root.display().to_string())];
    let mut policy = Policy::for_workspace(root, ctx.workspace.protected().to_vec(), Some(path.as_ref()));
    policy.limits = Limits { cpu_s: ctx.limits.cpu_s.min(limit.as_secs().max(1)), ..ctx.limits };
    if ctx.net.is_some() {
        policy.network = Network::Proxy;
    }
    let cmd = Cmd { argv, cwd: root, env: &env, policy: &policy, timeout: limit, net: ctx.net.as_ref() };
    let out = match ctx.sandbox.run(&cmd, &ctx.cancel) {
        Ok(out) => out,
        Err(e) => return ToolOutput::Error(format!("`{}` was not run: {e}", argv[0])),
    };
    let head = match &out.end {
        End::NotRun(reason) => return ToolOutput::Error(reason.clone()),
        End::Exited(code) => format!("exit status {code}"),
        End::Signalled(sig) => format!("killed by signal {sig}"),
        End::TimedOut if by_budget => format!(
            "`{}` was killed, with everything it started, when the wall_time budget ran out ({} s)",
            argv[0],
            limit.as_secs()
        ),
        End::TimedOut => {
            format!("`{}` was killed, with everything it started, after its {} s time limit", argv[0], limit.as_secs())
        }
        End::Cancelled => format!("`{}` was stopped, with everything it started: the call was cancelled", argv[0]),
    };
    let mut text = format!("{head}\n{}\n{}", show("stdout", &out.stdout), show("stderr", &out.stderr));
    if !out.network.is_empty() {
        text.push_str("\nnetwork:");
        for a in &out.network {
            match &a.outcome {
                Ok(()) => text.push_str(&format!("\n  allowed {} {}", a.method, a.target)),
                Err(why) => text.push_str(&format!("\n  refused {} {}: {why}", a.method, a.target)),
            }
        }
        if out.network_more > 0 {
            text.push_str(&format!("\n  ... and {} more", out.network_more));
        }
    }
    match out.end {
        End::Exited(0) => ToolOutput::Ok(text),
        _ => ToolOutput::Error(text),
    }
}

/// `shell`.
pub struct Shell;

impl Tool for Shell {
    type Args = ShellArgs;
    const NAME: &'static str = "shell";
    const DESCRIPTION: &'static str = "Run one program (no shell: no pipes, globs or redirection) in your workspace, \
                                       with its arguments as a list. Returns its exit status and bounded stdout and \
                                       stderr.";

    fn check(a: &ShellArgs) -> Result<(), String> {
        a.validate()
    }

    fn needs(a: &ShellArgs, _caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        Ok(a.argv
            .first()
            .map(|p| vec![Need::grant(Resource::new(ResourceKind::Shell, p.clone()), Right::Exec)])
            .unwrap_or_default())
    }

    fn dispatch(_: &ShellArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::External)
    }

    fn run(a: &ShellArgs, ctx: &ToolContext) -> ToolOutput {
        run_it(a, ctx)
    }
}
