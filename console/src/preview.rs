//! What an approval card shows besides the call: the model's rationale for
//! it, and the call's arguments as they will act (a file write as a diff
//! against the file it would replace, a command as the command line a shell
//! would read).
//!
//! The file is read the way the tool will reach it, by
//! [`Workspace::peek`]: walked beneath the process's workspace one name at a
//! time, never through a link out of it or into libos's own state, and read
//! only when the path still leads to the resource the request asks about.
//! A link planted after the call parked therefore shows as "leads
//! elsewhere", never as the content of whatever it points to. What is read
//! and what is diffed are bounded.

use std::time::Duration;

use libos_kernel::caps::{Resource, Right};
use libos_kernel::ipc::{Request, RequestKind};
use libos_kernel::text::must_escape;
use libos_kernel::{Kernel, KernelError, ModelCallOutcome};
use libos_tools::{Current, PathError, Workspace};
use serde_json::{Value, json};

use crate::wire;

/// Most bytes of the current file read (as `read_file` reads).
const MAX_FILE_BYTES: usize = 256 * 1024;
/// Most bytes of diff sent; a longer one is cut at a line with a note.
const MAX_DIFF_BYTES: usize = 64 * 1024;
/// How long a diff may take before it settles for a coarser one.
const DIFF_TIMEOUT: Duration = Duration::from_millis(300);

/// A request as the API shows it: [`wire::request`] with the model's
/// `rationale` and the call's `preview`.
pub(crate) fn request(kernel: &Kernel, r: &Request) -> Result<Value, KernelError> {
    let mut out = wire::request(r);
    out["rationale"] = json!(rationale(kernel, r)?);
    out["preview"] = preview(kernel, r)?;
    Ok(out)
}

/// The text the model gave with the parked call, from the model call
/// record of the quantum that made it (the call's own copy if that quantum
/// has none); `None` once the process no longer waits on `r`.
fn rationale(kernel: &Kernel, r: &Request) -> Result<Option<String>, KernelError> {
    let Some(parked) = kernel.parked(r.pid)?.filter(|p| p.request == Some(r.id)) else {
        return Ok(None);
    };
    let calls = kernel.quantum_model_calls(r.pid, parked.quantum)?;
    let answered = calls.iter().rev().find(|c| c.record.outcome == ModelCallOutcome::Ok);
    Ok(answered.and_then(|c| c.record.rationale.clone()).or(parked.call.rationale))
}

/// The call as it will act, by tool; `null` for tools whose arguments say it all.
fn preview(kernel: &Kernel, r: &Request) -> Result<Value, KernelError> {
    let RequestKind::Approval { resource, right } = &r.kind else { return Ok(Value::Null) };
    let args: Value = serde_json::from_str(&r.args).unwrap_or(Value::Null);
    let text = |key: &str| args.get(key).and_then(Value::as_str);
    Ok(match (r.tool.as_str(), text("path")) {
        ("write_file", Some(path)) => {
            let content = text("content").unwrap_or_default();
            let (mut out, old) = file(kernel, r, path, resource, *right)?;
            let (diff, note) = match old {
                Some(old) => diff(path, &old, content),
                None => (None, out["note"].as_str().map(str::to_string)),
            };
            out["kind"] = json!("write");
            out["bytes"] = json!(content.len());
            out["diff"] = json!(diff);
            out["note"] = json!(note);
            out
        }
        ("delete_file", Some(path)) => {
            let (mut out, _) = file(kernel, r, path, resource, *right)?;
            out["kind"] = json!("delete");
            out
        }
        ("shell", _) => {
            let argv: Vec<&str> =
                args.get("argv").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            json!({"kind": "command", "command_line": command_line(&argv), "timeout_s": args.get("timeout_s")})
        }
        _ => Value::Null,
    })
}

/// What is at `path` now, as the tool would reach it: `current` (`new`,
/// `text`, `binary`, `too_large`, `not_a_file`, `unreadable`, `elsewhere`,
/// `refused`, `invalid`), `target` (the resource the path leads to),
/// `current_bytes` and a `note` for people; and the text, when it is text.
fn file(
    kernel: &Kernel,
    r: &Request,
    path: &str,
    asked: &Resource,
    right: Right,
) -> Result<(Value, Option<String>), KernelError> {
    let workspace = kernel.process(r.pid)?.workspace;
    let only = |current: &str, note: String| {
        Ok((json!({"path": path, "target": null, "current": current, "current_bytes": null, "note": note}), None))
    };
    let ws = match Workspace::new(&workspace, kernel.protected_paths()) {
        Ok(ws) => ws,
        Err(e) => return only("unreadable", e),
    };
    let peek = match ws.peek(path, MAX_FILE_BYTES, |p| ws.resource(p) == *asked) {
        Ok(p) => p,
        Err(PathError::Confined(e)) => return only("refused", e),
        Err(PathError::Invalid(e)) => return only("invalid", e),
    };
    let target = ws.resource(&peek.path).to_string();
    let (current, bytes, note, text) = match peek.current {
        None => {
            let note = format!("the path now leads to {target}, not to the {right} {asked} asked for: not read");
            ("elsewhere", None, Some(note), None)
        }
        Some(Current::Missing) => ("new", None, Some("a new file".to_string()), None),
        Some(Current::Text(t)) => ("text", Some(t.len() as u64), None, Some(t)),
        Some(Current::Binary { bytes }) => {
            ("binary", Some(bytes), Some(format!("replaces a binary file of {bytes} bytes")), None)
        }
        Some(Current::TooLarge { bytes }) => {
            ("too_large", Some(bytes), Some(format!("the current file is too large to show ({bytes} bytes)")), None)
        }
        Some(Current::NotAFile) => ("not_a_file", None, Some("not a regular file".to_string()), None),
        Some(Current::Unreadable(why)) => ("unreadable", None, Some(format!("cannot be read: {why}")), None),
    };
    Ok((json!({"path": path, "target": target, "current": current, "current_bytes": bytes, "note": note}), text))
}

/// A unified diff from `old` to `new`, cut at [`MAX_DIFF_BYTES`], with a
/// note when there is something to say about it.
fn diff(path: &str, old: &str, new: &str) -> (Option<String>, Option<String>) {
    if old == new {
        return (None, Some("the file already holds exactly this content".to_string()));
    }
    if new.len() > MAX_FILE_BYTES {
        return (None, Some(format!("the new content is too large to diff ({} bytes)", new.len())));
    }
    let diff = similar::TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(old, new);
    let text = diff.unified_diff().context_radius(3).header(&format!("a/{path}"), &format!("b/{path}")).to_string();
    if text.len() <= MAX_DIFF_BYTES {
        return (Some(text), None);
    }
    let cut = text[..text.floor_char_boundary(MAX_DIFF_BYTES)].rfind('\n').map_or(0, |i| i + 1);
    let note = format!("the diff is cut after {cut} of its {} bytes", text.len());
    (Some(text[..cut].to_string()), Some(note))
}

/// `argv` as a POSIX shell would read it back: plain words bare, others
/// single-quoted, and words holding control or bidi characters in bash's
/// `$'...'` form with those characters escaped, so that the line shown is
/// one line and means exactly the argv that will run.
pub(crate) fn command_line(argv: &[&str]) -> String {
    argv.iter().map(|w| word(w)).collect::<Vec<_>>().join(" ")
}

fn word(w: &str) -> String {
    if !w.chars().any(must_escape)
        && let Ok(quoted) = shlex::try_quote(w)
    {
        return quoted.into_owned();
    }
    let mut out = String::from("$'");
    for c in w.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if must_escape(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if must_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn a_command_line_reads_back_as_the_argv_that_will_run() {
        let cases: [(&[&str], &str); 5] = [
            (&["ls", "-la", "src/"], "ls -la src/"),
            (&["sh", "-c", "echo hi; rm -rf ~"], "sh -c 'echo hi; rm -rf ~'"),
            (&["echo", "it's", ""], r#"echo "it's" ''"#),
            (&["printf", "a\nb\u{1b}[2J"], r"printf $'a\nb\x1b[2J'"),
            (&["cat", "gpj.\u{202e}exe", "x\\'y\u{85}"], r"cat $'gpj.\u202eexe' $'x\\\'y\u0085'"),
        ];
        for (argv, line) in cases {
            assert_eq!(command_line(argv), line, "{argv:?}");
        }
    }

    #[test]
    fn a_diff_says_when_there_is_nothing_to_show_and_is_cut_at_a_line() {
        assert_eq!(diff("a", "same\n", "same\n"), (None, Some("the file already holds exactly this content".into())));
        let (text, note) = diff("f.txt", "one\ntwo\n", "one\n2\n");
        assert_eq!(
            (text.as_deref(), note),
            (Some("--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n"), None)
        );
        let old: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let (text, note) = diff("big", &old, "");
        let text = text.unwrap();
        assert!(text.len() <= MAX_DIFF_BYTES && text.ends_with('\n'), "{}", text.len());
        assert!(note.unwrap().starts_with("the diff is cut after"));
    }
}
