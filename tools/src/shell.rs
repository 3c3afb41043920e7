//! `shell(argv, timeout_s)`: run one program, without a shell, in the workspace.
//!
//! `argv[0]` is a program name looked up on `PATH` (never a path), so the
//! capability `shell:<argv[0]>` names exactly what runs; the arguments go to
//! it as given, with no shell to expand them. It runs in the workspace root
//! with a cleared environment (only `PATH`, and `HOME` set to the
//! workspace), no standard input, its output bounded and its time limited:
//! past the timeout it is killed. A program's authority is everything that
//! program can do, which is why shipped images put `shell` behind approval.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::{ToolContext, ToolOutput};
use crate::spec::ToolSpec;
use crate::workspace::io_reason;

/// Bytes of stdout and of stderr kept (each).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// Default time limit.
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// Longest time limit a call may ask for.
pub const MAX_TIMEOUT_S: u64 = 600;

/// Arguments of `shell`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellArgs {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Seconds before it is killed (default 30, at most 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "shell",
        description: "Run one program (no shell: no pipes, globs or redirection) in your workspace, with its \
                      arguments as a list. Returns its exit status and bounded stdout and stderr.",
        parameters: json!({
            "type": "object",
            "properties": {
                "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                         "description": "Program name, then its arguments, e.g. [\"git\", \"status\"]."},
                "timeout_s": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_S}
            },
            "required": ["argv"],
            "additionalProperties": false
        }),
    }
}

/// Reads a stream to its end, keeping the first `MAX_OUTPUT_BYTES`.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<(Vec<u8>, usize)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut total = 0;
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
            let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        (kept, total)
    })
}

fn show(name: &str, (kept, total): (Vec<u8>, usize)) -> String {
    let text = String::from_utf8_lossy(&kept);
    let mut out = format!("{name}:\n{text}");
    if total > kept.len() {
        out.push_str(&format!("\n[... {name} cut: {total} bytes, the first {} shown]", kept.len()));
    }
    out
}

pub(crate) fn run(a: &ShellArgs, ctx: &ToolContext) -> ToolOutput {
    if let Err(e) = a.validate() {
        return ToolOutput::Error(e);
    }
    let root = ctx.workspace.root();
    let mut cmd = Command::new(&a.argv[0]);
    cmd.args(&a.argv[1..])
        .current_dir(root)
        .env_clear()
        .env("HOME", root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ToolOutput::Error(format!("cannot run `{}`: {}", a.argv[0], io_reason(&e))),
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        return ToolOutput::Error(format!("cannot capture the output of `{}`", a.argv[0]));
    };
    let (out, err) = (drain(stdout), drain(stderr));
    let limit = Duration::from_secs(a.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return ToolOutput::Error(format!("waiting for `{}`: {}", a.argv[0], io_reason(&e))),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let head = match status {
        None => format!("`{}` was killed after its {} s time limit", a.argv[0], limit.as_secs()),
        Some(s) => match s.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        },
    };
    let text = format!("{head}\n{}\n{}", show("stdout", out), show("stderr", err));
    match status {
        Some(s) if s.success() => ToolOutput::Ok(text),
        _ => ToolOutput::Error(text),
    }
}
