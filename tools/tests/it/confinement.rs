//! File tools never leave the workspace, and never touch the store.

use std::os::unix::fs::symlink;
use std::path::Path;

use libos_kernel::Timestamp;
use libos_tools::{ToolCall, ToolContext, ToolName, ToolOutput, Workspace};
use pretty_assertions::assert_eq;

struct Fixture {
    _dir: tempfile::TempDir,
    ws: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// A workspace `ws/` with a file and a protected `.libos/`, next to an `outside/` with a secret.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(ws.join("sub")).unwrap();
    std::fs::create_dir_all(ws.join(".libos")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(ws.join("hello.txt"), "hello").unwrap();
    std::fs::write(ws.join(".libos/libos.db"), "db").unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    symlink(&outside, ws.join("escape")).unwrap();
    symlink(outside.join("secret.txt"), ws.join("secret-link")).unwrap();
    symlink(outside.join("does-not-exist"), ws.join("dangling")).unwrap();
    symlink(ws.join("hello.txt"), ws.join("inner-link")).unwrap();
    let ws = std::fs::canonicalize(ws).unwrap();
    let outside = std::fs::canonicalize(outside).unwrap();
    Fixture { _dir: dir, ws, outside }
}

fn run(f: &Fixture, tool: &str, args: &str) -> ToolOutput {
    let protected = vec![f.ws.join(".libos")];
    let ctx = ToolContext::new(Workspace::new(&f.ws, protected).unwrap(), Timestamp(0));
    ToolCall::parse(tool, args, &ToolName::ALL).unwrap().run(&ctx)
}

/// (tool, path) -> the one-line result.
fn check(f: &Fixture, tool: &str, path: &str, expect: ToolOutput) {
    let args = match tool {
        "write_file" => serde_json::json!({"path": path, "content": "pwned"}),
        _ => serde_json::json!({"path": path}),
    };
    assert_eq!(run(f, tool, &args.to_string()), expect, "{tool} {path}");
}

fn err(msg: &str) -> ToolOutput {
    ToolOutput::Error(msg.to_string())
}

#[test]
fn paths_that_escape_the_workspace_are_refused_for_every_file_tool() {
    let f = fixture();
    let secret = f.outside.join("secret.txt");
    let cases = [
        ("../outside/secret.txt", err("path `../outside/secret.txt` is outside the workspace")),
        ("sub/../../outside/secret.txt", err("path `sub/../../outside/secret.txt` is outside the workspace")),
        (secret.to_str().unwrap(), err(&format!("path `{}` is outside the workspace", secret.display()))),
        ("/etc/passwd", err("path `/etc/passwd` is outside the workspace")),
        ("escape/secret.txt", err("path `escape/secret.txt` is outside the workspace")),
        ("secret-link", err("path `secret-link` is outside the workspace")),
        ("dangling", err("path `dangling` goes through a broken symlink")),
        (".libos/libos.db", err("path `.libos/libos.db` is libos's own state and is never accessible to tools")),
        ("sub/../.libos", err("path `sub/../.libos` is libos's own state and is never accessible to tools")),
        ("", err("path is empty")),
    ];
    for tool in ["read_file", "write_file", "list_dir"] {
        for (path, expect) in &cases {
            check(&f, tool, path, expect.clone());
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    assert!(!f.outside.join("does-not-exist").exists(), "nothing was written through the dangling link");
    assert_eq!(std::fs::read_to_string(f.ws.join(".libos/libos.db")).unwrap(), "db");
}

#[test]
fn paths_inside_the_workspace_work_including_absolute_and_inner_symlinks() {
    let f = fixture();
    let abs = f.ws.join("hello.txt");
    check(&f, "read_file", "hello.txt", ToolOutput::Ok("hello".into()));
    check(&f, "read_file", abs.to_str().unwrap(), ToolOutput::Ok("hello".into()));
    check(&f, "read_file", "sub/../hello.txt", ToolOutput::Ok("hello".into()));
    check(&f, "read_file", "inner-link", ToolOutput::Ok("hello".into()));
    check(&f, "write_file", "new/dir/file.txt", ToolOutput::Ok("wrote 5 bytes to `new/dir/file.txt`".into()));
    assert_eq!(std::fs::read_to_string(f.ws.join("new/dir/file.txt")).unwrap(), "pwned");
    check(&f, "read_file", "missing.txt", err("cannot read `missing.txt`: no such file or directory"));
    check(&f, "read_file", "sub", err("`sub` is a directory; use list_dir"));
    check(&f, "write_file", "sub", err("`sub` is a directory"));
    // The listing hides the store, and shows links as what they are.
    let listing = run(&f, "list_dir", r#"{"path": "."}"#);
    let ToolOutput::Ok(text) = listing else { panic!("{listing:?}") };
    assert!(!text.contains(".libos"), "{text}");
    assert!(text.contains("hello.txt (5 bytes)") && text.contains("sub/") && text.contains("new/"), "{text}");
}

#[test]
fn a_workspace_that_does_not_exist_is_an_error_naming_it() {
    let err = Workspace::new(Path::new("/definitely/not/here"), Vec::new()).unwrap_err();
    assert_eq!(err, "workspace /definitely/not/here is not usable: no such file or directory");
}
