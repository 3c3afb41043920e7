//! File tools never leave the workspace, and never touch the store.

use std::os::unix::fs::symlink;
use std::path::Path;

use libos_core::Timestamp;
use libos_tools::{Caller, ToolCall, ToolContext, ToolOutput, ToolSet, Workspace};
use pretty_assertions::assert_eq;
use rustix::fs::{FileType, Mode};

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
    symlink("nowhere", ws.join("dangling-inside")).unwrap();
    symlink(".libos", ws.join("store-link")).unwrap();
    std::fs::hard_link(ws.join(".libos/libos.db"), ws.join("db-hard-link")).unwrap();
    let ws = std::fs::canonicalize(ws).unwrap();
    let outside = std::fs::canonicalize(outside).unwrap();
    Fixture { _dir: dir, ws, outside }
}

/// Runs a call as if every need were granted. A call its needs refuse
/// still runs, with nothing allowed: the tool's own refusal is what is shown.
fn run(f: &Fixture, tool: &str, args: &str) -> ToolOutput {
    // As the kernel's list: the store's directory and its files.
    let workspace = Workspace::new(&f.ws, vec![f.ws.join(".libos"), f.ws.join(".libos/libos.db")]).unwrap();
    let call = ToolCall::parse(tool, args, &ToolSet::builtins()).unwrap();
    let allowed = call.needs(Caller { workspace: &workspace, parent: None }).unwrap_or_default();
    let mut ctx = ToolContext::new(workspace, Timestamp(0));
    ctx.allowed = allowed;
    call.run(&ctx)
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
        // A link to outside is refused as outside, whether or not its target exists.
        ("dangling", err("path `dangling` is outside the workspace")),
        ("dangling-inside", err("path `dangling-inside` goes through a broken symlink")),
        // Leaving the workspace is refused even on the way back in.
        ("../ws/hello.txt", err("path `../ws/hello.txt` is outside the workspace")),
        (
            "store-link/libos.db",
            err("path `store-link/libos.db` is libos's own state and is never accessible to tools"),
        ),
        // The store under another name is still the store.
        ("db-hard-link", err("path `db-hard-link` is libos's own state and is never accessible to tools")),
        ("hello.txt/x", err("path `hello.txt/x`: not a directory")),
        (".libos/libos.db", err("path `.libos/libos.db` is libos's own state and is never accessible to tools")),
        ("sub/../.libos", err("path `sub/../.libos` is libos's own state and is never accessible to tools")),
        ("", err("path is empty")),
    ];
    for tool in ["read_file", "write_file", "list_dir", "delete_file"] {
        for (path, expect) in &cases {
            check(&f, tool, path, expect.clone());
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    assert!(!f.outside.join("does-not-exist").exists(), "nothing was written through the dangling link");
    assert_eq!(std::fs::read_to_string(f.ws.join(".libos/libos.db")).unwrap(), "db");
    assert!(!f.ws.join("nowhere").exists(), "nothing was written through the dangling link");
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
    // A FIFO would block a read forever: it is refused, not opened.
    rustix::fs::mknodat(rustix::fs::CWD, f.ws.join("fifo"), FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
    check(&f, "read_file", "fifo", err("`fifo` is not a regular file"));
    check(&f, "delete_file", "fifo", ToolOutput::Ok("deleted `fifo`".into()));
    check(&f, "delete_file", "new/dir/file.txt", ToolOutput::Ok("deleted `new/dir/file.txt`".into()));
    check(&f, "delete_file", "new/dir", err("`new/dir` is a directory; only files can be deleted"));
    check(&f, "delete_file", "new/dir/file.txt", err("cannot delete `new/dir/file.txt`: no such file or directory"));
    // The listing hides the store (under any name), and shows links as what they are.
    let listing = run(&f, "list_dir", r#"{"path": "."}"#);
    let ToolOutput::Ok(text) = listing else { panic!("{listing:?}") };
    // (Link sizes are their targets' lengths, which depend on the temporary directory.)
    let names: Vec<&str> = text.lines().map(|l| l.split(" (").next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "dangling",
            "dangling-inside",
            "escape",
            "hello.txt",
            "inner-link",
            "new/",
            "secret-link",
            "store-link",
            "sub/"
        ]
    );
    assert!(text.contains("hello.txt (5 bytes)") && text.contains("store-link (6 bytes)"), "{text}");
}

#[test]
fn a_workspace_that_does_not_exist_is_an_error_naming_it() {
    let err = Workspace::new(Path::new("/definitely/not/here"), Vec::new()).unwrap_err();
    assert_eq!(err, "workspace /definitely/not/here is not usable: no such file or directory");
}

/// Issue 17: an approval card shows what a write would replace, read by the
/// same walk the tools use: never through a link out of the workspace or
/// into libos's state, and only where the caller expects the path to lead.
#[test]
fn a_peek_reads_only_what_the_file_tools_would_reach() {
    use libos_tools::{Current, PathError};
    let f = fixture();
    std::fs::write(f.ws.join("big.txt"), "x".repeat(65)).unwrap();
    std::fs::write(f.ws.join("blob.bin"), [0xff, 0xfe, 0x00]).unwrap();
    let workspace = Workspace::new(&f.ws, vec![f.ws.join(".libos"), f.ws.join(".libos/libos.db")]).unwrap();
    let peek = |path: &str| {
        workspace
            .peek(path, 64, |_| true)
            .map(|p| (p.path.strip_prefix(&f.ws).unwrap().display().to_string(), p.current))
    };
    let found = |at: &str, c: Current| Ok((at.to_string(), Some(c)));
    let confined = |m: &str| Err(PathError::Confined(m.to_string()));
    assert_eq!(peek("hello.txt"), found("hello.txt", Current::Text("hello".into())));
    assert_eq!(peek("inner-link"), found("hello.txt", Current::Text("hello".into())));
    assert_eq!(peek("sub/new.txt"), found("sub/new.txt", Current::Missing));
    assert_eq!(peek("sub"), found("sub", Current::NotAFile));
    assert_eq!(peek("big.txt"), found("big.txt", Current::TooLarge { bytes: 65 }));
    assert_eq!(peek("blob.bin"), found("blob.bin", Current::Binary { bytes: 3 }));
    assert_eq!(peek("secret-link"), confined("path `secret-link` is outside the workspace"));
    assert_eq!(peek("escape/secret.txt"), confined("path `escape/secret.txt` is outside the workspace"));
    let own = |p: &str| confined(&format!("path `{p}` is libos's own state and is never accessible to tools"));
    assert_eq!(peek("store-link/libos.db"), own("store-link/libos.db"));
    assert_eq!(peek("db-hard-link"), own("db-hard-link"));
    // A path that now leads elsewhere than expected is not read.
    let elsewhere = workspace.peek("inner-link", 64, |p| p == f.ws.join("inner-link")).unwrap();
    assert_eq!((elsewhere.path, elsewhere.current), (f.ws.join("hello.txt"), None));
}
