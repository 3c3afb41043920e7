//! Issue 14, hole 2: a directory swapped for a symlink while file tools run.
//!
//! A thread exchanges a directory `d` with a symlink (`renameat2` with
//! `RENAME_EXCHANGE`, atomically, over and over) while the test calls the
//! file tools on paths under `d` the way the runtime does: `needs()` first,
//! then `run()` if the call was not refused. Whatever the interleaving,
//! nothing outside the workspace or in libos's store may be read, listed,
//! written or deleted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libos_core::Timestamp;
use libos_tools::{Caller, ToolCall, ToolContext, ToolOutput, ToolSet, Workspace};
use pretty_assertions::assert_eq;
use rustix::fs::{CWD, RenameFlags, renameat_with};

/// Rounds of calls made while the swapper runs.
const ROUNDS: usize = 2_000;

/// Every file in `dir`, by name, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Exchanges `a` and `b` until told to stop; counts the exchanges.
struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    fn start(a: PathBuf, b: PathBuf) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let (ready, started) = std::sync::mpsc::channel();
        let thread = {
            let (stop, swaps) = (stop.clone(), swaps.clone());
            std::thread::spawn(move || {
                let mut ready = Some(ready);
                while !stop.load(Ordering::Relaxed) {
                    renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).unwrap();
                    swaps.fetch_add(1, Ordering::Relaxed);
                    if let Some(ready) = ready.take() {
                        ready.send(()).unwrap();
                    }
                }
            })
        };
        started.recv().unwrap();
        Swapper { stop, swaps, thread: Some(thread) }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.swaps.load(Ordering::Relaxed)
    }
}

/// Runs one call as the runtime does: needs (a refusal ends it), then run
/// with every need granted. Returns what the model would see.
fn call(ws: &Workspace, tool: &str, args: serde_json::Value) -> ToolOutput {
    let call = ToolCall::parse(tool, &args.to_string(), &ToolSet::builtins()).unwrap();
    match call.needs(Caller { workspace: ws, parent: None }) {
        Err(refusal) => ToolOutput::Error(format!("refused: {refusal:?}")),
        Ok(allowed) => call.run(&ToolContext { allowed, ..ToolContext::new(ws.clone(), Timestamp(0)) }),
    }
}

struct Race {
    _dir: tempfile::TempDir,
    ws: PathBuf,
    /// The directory the link points to.
    target: PathBuf,
}

/// `ws/d` (a directory holding `secret`), `ws/.libos/` (the store) and an
/// `outside/`; `ws/d-link` is a symlink to the directory `link_to` (relative
/// to `ws`, made if missing).
fn race(link_to: &str) -> Race {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join("d")).unwrap();
    std::fs::write(ws.join("d/secret"), "inside").unwrap();
    std::fs::create_dir_all(ws.join(".libos")).unwrap();
    std::fs::write(ws.join(".libos/libos.db"), b"SQLite format 3\0STORE MARKER").unwrap();
    std::fs::write(ws.join(".libos/libos.db-wal"), b"STORE MARKER wal").unwrap();
    // Named so that a listing of the wrong directory shows the marker too.
    std::fs::write(ws.join(".libos/STORE MARKER"), "").unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "OUTSIDE SECRET").unwrap();
    std::fs::write(outside.join("x"), "OUTSIDE x").unwrap();
    std::fs::write(outside.join("libos.db"), "OUTSIDE db").unwrap();
    std::fs::write(outside.join("OUTSIDE"), "").unwrap();
    std::os::unix::fs::symlink(link_to, ws.join("d-link")).unwrap();
    std::fs::create_dir_all(ws.join(link_to)).unwrap();
    let ws = std::fs::canonicalize(ws).unwrap();
    let target = std::fs::canonicalize(ws.join(link_to)).unwrap();
    Race { _dir: dir, ws, target }
}

/// Swaps `d` and `d-link` while running `rounds` of the file tools on
/// `names` under `d`; returns the first outputs that showed `marker` (at
/// most three, the rest noted), and the number of swaps.
fn run_race(r: &Race, names: &[&str], marker: &str) -> (Vec<String>, u64) {
    let ws = Workspace::new(&r.ws, vec![r.ws.join(".libos")]).unwrap();
    let swapper = Swapper::start(r.ws.join("d"), r.ws.join("d-link"));
    let mut leaks = Vec::new();
    let (mut calls, mut refused) = (0, 0);
    for _ in 0..ROUNDS {
        for name in names {
            let path = format!("d/{name}");
            let outputs = [
                call(&ws, "write_file", serde_json::json!({"path": path, "content": "pwned"})),
                call(&ws, "read_file", serde_json::json!({"path": path})),
                call(&ws, "read_file", serde_json::json!({"path": "d/secret"})),
                call(&ws, "list_dir", serde_json::json!({"path": "d"})),
                call(&ws, "delete_file", serde_json::json!({"path": path})),
            ];
            for out in outputs {
                calls += 1;
                let text = match out {
                    ToolOutput::Ok(t) => t,
                    ToolOutput::Error(t) => {
                        refused += 1;
                        t
                    }
                };
                if text.contains(marker) {
                    leaks.push(text);
                }
                if leaks.len() > 3 {
                    leaks.truncate(3);
                    leaks.push("[and more]".to_string());
                }
            }
        }
    }
    let swaps = swapper.stop();
    // How hard the race was run; which calls lost it depends on timing.
    eprintln!("{calls} calls ({refused} failed or refused) during {swaps} swaps");
    (leaks, swaps)
}

#[test]
fn symlink_race_renameat2_exchange_never_reaches_outside_the_workspace() {
    let r = race("../outside");
    let before = snapshot(&r.target);
    let (leaks, swaps) = run_race(&r, &["x", "libos.db"], "OUTSIDE");
    assert!(swaps > 0);
    assert_eq!(leaks, Vec::<String>::new(), "outside content was returned");
    assert_eq!(snapshot(&r.target), before, "outside was changed ({swaps} swaps)");
}

#[test]
fn symlink_race_renameat2_exchange_never_replaces_the_store() {
    let r = race(".libos");
    let before = snapshot(&r.target);
    let (leaks, swaps) = run_race(&r, &["libos.db", "libos.db-wal"], "STORE MARKER");
    assert!(swaps > 0);
    assert_eq!(leaks, Vec::<String>::new(), "the store's content was returned");
    assert_eq!(snapshot(&r.target), before, "the store was changed ({swaps} swaps)");
}

/// The capability check is about the file a call reaches: a call checked on
/// `d/x` that would reach `sub/x` by the time it runs (its directory swapped
/// for a link meanwhile) does nothing.
#[test]
fn a_path_that_leads_elsewhere_after_its_check_is_refused() {
    let r = race("sub");
    std::fs::write(r.ws.join("sub/x"), "sub's x").unwrap();
    let ws = Workspace::new(&r.ws, Vec::new()).unwrap();
    let swap = || renameat_with(CWD, r.ws.join("d"), CWD, r.ws.join("d-link"), RenameFlags::EXCHANGE).unwrap();
    for (tool, args) in [
        ("write_file", serde_json::json!({"path": "d/x", "content": "pwned"})),
        ("read_file", serde_json::json!({"path": "d/x"})),
        ("delete_file", serde_json::json!({"path": "d/x"})),
    ] {
        std::fs::write(r.ws.join("d/x"), "d's x").unwrap();
        let call = ToolCall::parse(tool, &args.to_string(), &ToolSet::builtins()).unwrap();
        let allowed = call.needs(Caller { workspace: &ws, parent: None }).unwrap();
        swap();
        let out = call.run(&ToolContext { allowed, ..ToolContext::new(ws.clone(), Timestamp(0)) });
        swap();
        assert_eq!(
            out,
            ToolOutput::Error(
                "path `d/x` changed after it was checked (it now leads to `sub/x`): nothing was done".into()
            ),
            "{tool}"
        );
        assert_eq!(std::fs::read_to_string(r.ws.join("sub/x")).unwrap(), "sub's x", "{tool}");
    }
}
