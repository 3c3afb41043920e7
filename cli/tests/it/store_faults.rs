//! Store faults: a full disk, a read-only file system, a store locked by
//! another program and a corrupted page each give a one-line error and a
//! store exit code, never a panic, and lose nothing that was acknowledged.

use std::path::Path;
use std::process::Command;

use pretty_assertions::assert_eq;

use crate::support::{Env, s};

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

fn live(env: &Env) -> usize {
    let ps: serde_json::Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    ps.as_array().unwrap().len()
}

/// Whether this machine lets the test mount a small file system in a
/// private mount namespace (root, or a user namespace with mounts).
fn can_mount() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" && umount \"$d\""])
        .output()
        .map_err(|e| format!("unshare is not available: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("cannot mount a tmpfs here: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Runs `script` with `$L` (the libos binary) and `$D` (a 600 KiB tmpfs
/// holding the store) in a private mount namespace; the store is copied to
/// `out` at the end. The script prints what it saw; this returns its output.
fn on_small_disk(out: &Path, script: &str) -> String {
    let libos = assert_cmd::cargo::cargo_bin("libos");
    let full = format!(
        "set -u\nD=$(mktemp -d)\nmount -t tmpfs -o size=600k tmpfs \"$D\"\nexport LIBOS_DB=\"$D/libos.db\"\n{script}\n\
         cp \"$D\"/libos.db* \"$OUT\"/\n"
    );
    let output = Command::new("unshare")
        .args(["-m", "sh", "-c", &full])
        .env("L", libos)
        .env("OUT", out)
        .env_remove("LIBOS_DB")
        .current_dir(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_full_disk_and_a_read_only_file_system_refuse_writes_and_lose_nothing() {
    if let Err(why) = can_mount() {
        println!("skipped: {why}");
        return;
    }
    let env = Env::new();
    let goal = "x".repeat(2000);
    let seen = on_small_disk(
        env.dir.path(),
        &format!(
            r#"
"$L" init >/dev/null
n=0
while true; do out=$("$L" spawn assistant --goal "{goal}" 2>&1); code=$?; [ $code -eq 0 ] || break; n=$((n+1)); done
echo "acknowledged $n"
echo "full: $code $out"
"$L" ps >/dev/null && echo "ps works when full"
mount -o remount,ro "$D"
out=$("$L" spawn assistant --goal small 2>&1); echo "read-only: $? $out"
out=$("$L" kill 1 2>&1); echo "read-only: $? $out"
"$L" ps >/dev/null && echo "ps works read-only"
"$L" audit verify | cut -d, -f1
"#
        ),
    );
    let lines: Vec<&str> = seen.lines().collect();
    let acknowledged: usize = lines[0].strip_prefix("acknowledged ").unwrap().parse().unwrap();
    assert!(acknowledged > 10, "{seen}");
    assert_eq!(
        lines[1..],
        [
            "full: 4 libos: error: the disk holding the store is full; nothing was changed",
            "ps works when full",
            "read-only: 4 libos: error: store is read-only; nothing was changed",
            "read-only: 4 libos: error: store is read-only; nothing was changed",
            "ps works read-only",
            &format!("audit chain intact: {acknowledged} records"),
        ]
    );
    // The copy taken at the end: every acknowledged spawn, and a sound file.
    let db = env.path("libos.db");
    assert_eq!(integrity(&db), "ok");
    let ps = env.cmd(&["--db", s(&db), "ps", "--json"]).output().unwrap();
    let ps: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(ps.as_array().unwrap().len(), acknowledged);
}

#[test]
fn a_store_locked_by_another_program_is_waited_for_then_refused() {
    let env = Env::new();
    env.ok(&["init"]);
    env.ok(&["spawn", "assistant", "--goal", "before the lock"]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (code, err) = env.fails(&["spawn", "assistant", "--goal", "while locked"]);
    assert_eq!(
        (code, err.trim_end()),
        (4, "libos: error: store is locked by another process (gave up after waiting 5 s); nothing was changed")
    );
    // Readers are not blocked by a writer.
    assert_eq!(live(&env), 1);
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    env.ok(&["spawn", "assistant", "--goal", "after the lock"]);
    assert_eq!(live(&env), 2);
    env.ok(&["audit", "verify"]);
    assert_eq!(integrity(&env.db()), "ok");
}

#[test]
fn a_corrupted_page_is_reported_not_panicked_on() {
    let env = Env::new();
    env.ok(&["init"]);
    for i in 0..30 {
        env.ok(&["spawn", "assistant", "--goal", &format!("goal {i}")]);
    }
    // Every third page after the first two gets 400 random-looking bytes.
    let db = env.db();
    let mut bytes = std::fs::read(&db).unwrap();
    let pages = bytes.len() / 2048;
    for page in (3..pages).step_by(3) {
        for (k, b) in bytes[page * 2048 + 100..page * 2048 + 500].iter_mut().enumerate() {
            *b = (k * 7919 % 251) as u8;
        }
    }
    std::fs::write(&db, bytes).unwrap();
    for args in [&["ps"][..], &["audit", "verify"], &["spawn", "assistant", "--goal", "x"], &["logs", "3"]] {
        let (code, err) = env.fails(args);
        assert_eq!(
            (code, err.trim_end()),
            (
                4,
                format!(
                    "libos: error: cannot open store {}: store is corrupt: database disk image is malformed",
                    db.display()
                )
                .as_str()
            ),
            "libos {args:?}"
        );
    }
}
