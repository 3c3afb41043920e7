//! Opening stores: every bad path is a one-line error and leaves the file untouched.

use std::path::Path;

use libos_kernel::{Kernel, OpenError, OpenMode, StoreLocation};
use pretty_assertions::assert_eq;

fn open(path: &std::path::Path, mode: OpenMode) -> Result<Kernel, OpenError> {
    Kernel::open(&StoreLocation::File(path.to_path_buf()), mode)
}

fn bad_store_paths_give_one_line_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let err = open(d, OpenMode::Create).unwrap_err();
    assert_eq!(err, OpenError::IsDirectory(d.to_path_buf()));

    let text = d.join("notes.txt");
    std::fs::write(&text, "this is not a database, but it is long enough to have a header page......").unwrap();
    let before = std::fs::read(&text).unwrap();
    assert_eq!(open(&text, OpenMode::Create).unwrap_err(), OpenError::NotADatabase(text.clone()));
    assert_eq!(std::fs::read(&text).unwrap(), before);

    let under_file = text.join("libos.db");
    let err = open(&under_file, OpenMode::Create).unwrap_err();
    assert!(matches!(err, OpenError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("cannot open store {}: ", under_file.display())), "{err}");

    let missing = d.join("nope.db");
    assert_eq!(open(&missing, OpenMode::Existing).unwrap_err(), OpenError::Missing(missing.clone()));
    assert!(!missing.exists());

    let foreign = d.join("foreign.db");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    assert_eq!(open(&foreign, OpenMode::Create).unwrap_err(), OpenError::Foreign(foreign.clone()));

    for err in [
        OpenError::IsDirectory(d.to_path_buf()),
        OpenError::NotADatabase(text),
        OpenError::Missing(missing),
        OpenError::Foreign(foreign),
    ] {
        assert_eq!(err.to_string().lines().count(), 1);
    }
}

fn a_store_from_a_newer_libos_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.db");
    drop(open(&path, OpenMode::Create).unwrap());
    rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
    let err = open(&path, OpenMode::Existing).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "store {} has schema version 99, newer than this libos supports ({}); upgrade libos",
            path.display(),
            libos_kernel::schema_version()
        )
    );
}

fn a_store_reopens_with_its_processes_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("libos.db");
    let kernel = open(&path, OpenMode::Create).unwrap();
    let pid = crate::support::spawn(&kernel, "persist me");
    drop(kernel);
    let kernel = open(&path, OpenMode::Existing).unwrap();
    assert_eq!(kernel.process(pid).unwrap().goal, "persist me");
    assert!(kernel.audit_verify(None).unwrap().ok());
    let protected = kernel.protected_paths();
    assert!(protected.iter().any(|p| p.ends_with("libos.db-wal")), "{protected:?}");
}

/// Issue 14: `protect("libos.toml")` kept a missing path relative, so it never
/// matched the absolute paths tools resolve and an agent could plant one.
fn protect_makes_a_missing_path_absolute_and_names_a_symlink_and_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap();
    let kernel = Kernel::in_memory().unwrap();
    let before = kernel.protected_paths();
    let missing = Path::new("not-yet/libos.toml");
    kernel.protect(&dir.path().join(missing));
    std::fs::write(real.join("images.toml"), "").unwrap();
    std::os::unix::fs::symlink(real.join("images.toml"), real.join("link.toml")).unwrap();
    kernel.protect(&dir.path().join("link.toml"));
    kernel.protect(Path::new("relative-and-missing.toml"));
    let cwd = std::fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
    let added: Vec<_> = kernel.protected_paths().into_iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(
        added,
        vec![
            real.join(missing),
            real.join("images.toml"),
            real.join("link.toml"),
            cwd.join("relative-and-missing.toml")
        ]
    );
}

/// Issue 18: a quantum counted its process's whole transcript to say how
/// many older turns the prompt leaves out; the process row counts them
/// now, and a store from before (schema 9) gets its counts on upgrade.
fn older_turns_are_counted_by_the_process_row_and_upgraded_stores_count_theirs() {
    use crate::support::{commit, lease_one};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.db");
    let kernel = open(&path, OpenMode::Create).unwrap();
    let pid = crate::support::spawn(&kernel, "count me");
    for _ in 0..5 {
        let lease = lease_one(&kernel);
        kernel.commit_quantum(&lease, &commit("now", "{}", libos_kernel::Next::Continue)).unwrap();
    }
    let shown = |k: &Kernel| {
        let h = k.recent_history(pid, 2, 1).unwrap();
        (h.full.iter().map(|e| e.quantum).collect::<Vec<_>>(), h.compact.len(), h.older)
    };
    assert_eq!(shown(&kernel), (vec![4, 5], 1, 2));
    drop(kernel);
    // The store as schema 9 left it: no counts.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER objects_fts_insert; DROP TRIGGER objects_fts_update; DROP TRIGGER objects_fts_delete; \
         DROP TABLE objects_fts; DROP INDEX messages_interrupts; DROP INDEX views_pinned; ALTER TABLE processes DROP COLUMN unread; \
         ALTER TABLE processes DROP COLUMN turns; PRAGMA user_version = 9;",
    )
    .unwrap();
    drop(conn);
    let kernel = open(&path, OpenMode::Existing).unwrap();
    assert_eq!(shown(&kernel), (vec![4, 5], 1, 2));
}

libos_kernel::tests!(sync:
    bad_store_paths_give_one_line_errors_and_change_nothing,
    a_store_from_a_newer_libos_is_refused,
    a_store_reopens_with_its_processes_and_chain,
    protect_makes_a_missing_path_absolute_and_names_a_symlink_and_its_target,
    older_turns_are_counted_by_the_process_row_and_upgraded_stores_count_theirs,
);
