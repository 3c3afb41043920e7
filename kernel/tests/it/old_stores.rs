//! Stores written before audit records and process states were typed read
//! back as types, verify unchanged, and a stored value no record can have
//! is reported as corruption rather than read as a default.
//!
//! `fixtures/before_typed_records.db` was written by the `libos` binary of
//! the commit before typed records (`libos demo`, then `spawn`, `pause`,
//! `resume`, `renice`, `grant`, `revoke`, `send` and `kill` by hand): 103
//! records of every kind, with decisions `allow`, `ask`, `deny`,
//! `kinship` and `approved`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use libos_kernel::audit::{AuditAction, AuditDecision, AuditKind, AuditRecord, KernelAction, Outcome};
use libos_kernel::{AuditFilter, Kernel, KernelError, OpenMode, ProcessFilter, StoreError, StoreLocation};
use pretty_assertions::assert_eq;

use crate::support::*;

fn old_store() -> (tempfile::TempDir, Kernel) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.db");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/before_typed_records.db");
    std::fs::copy(fixture, &path).unwrap();
    let kernel = Kernel::open(&StoreLocation::File(path), OpenMode::Existing).unwrap();
    (dir, kernel)
}

fn a_chain_written_before_typed_records_reads_back_typed_and_verifies() {
    let (_dir, kernel) = old_store();
    let report = kernel.audit_verify(None).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records, 103);
    let records = kernel.audit(&AuditFilter::default()).unwrap();
    assert_eq!(records.len(), 103);
    // Typed and written back, every record is the text it was stored as:
    // its canonical bytes hash to the stored hash.
    let mut buf = Vec::new();
    for r in &records {
        r.canonical_bytes(&mut buf);
        assert_eq!(libos_kernel::audit::chain_hash(&r.prev_hash, &buf), r.hash, "record {}", r.seq);
    }
    let seen: BTreeSet<String> =
        records.iter().map(|r| format!("{} {} {}", r.kind, r.action, r.outcome)).collect::<BTreeSet<_>>();
    let typed_kernel_actions: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match &r.action {
            AuditAction::Kernel(a) => Some(a.as_str()),
            AuditAction::Tool(_) | AuditAction::NoTool | AuditAction::BadName(_) => None,
        })
        .collect();
    assert_eq!(
        typed_kernel_actions.into_iter().collect::<Vec<_>>(),
        [
            "approve", "delegate", "deny", "exit", "grant", "kill", "lease", "park", "pause", "renice", "request",
            "resume", "revoke", "send", "spawn", "wake", "yield"
        ]
    );
    assert!(seen.contains("tool write_file parked"), "{seen:?}");
    assert!(seen.contains("effect write_file pending"), "{seen:?}");
    let decisions: BTreeSet<Option<AuditDecision>> = records.iter().map(|r| r.decision).collect();
    assert_eq!(
        decisions.into_iter().collect::<Vec<_>>(),
        [
            None,
            Some(AuditDecision::Allow),
            Some(AuditDecision::Ask),
            Some(AuditDecision::Deny),
            Some(AuditDecision::Kinship),
            Some(AuditDecision::Approved)
        ]
    );
    // The old store's processes read back in every state it holds.
    let states: Vec<String> =
        kernel.processes(ProcessFilter::All).unwrap().iter().map(|p| format!("{} {}", p.pid, p.state)).collect();
    assert_eq!(
        states,
        [
            "1 exited(0)",
            "2 exited(0)",
            "3 exited(0)",
            "4 exited(0)",
            "5 killed(by human:operator)",
            "6 killed(by human:operator)",
            "7 runnable",
            "8 paused (was runnable)"
        ]
    );
}

/// Every name each audit type writes reads back as that value.
fn every_audit_name_reads_back_as_itself() {
    for k in [AuditKind::State, AuditKind::Tool, AuditKind::Effect, AuditKind::Operator, AuditKind::Kernel] {
        assert_eq!(AuditKind::parse(k.as_str()), Some(k));
    }
    for o in Outcome::ALL {
        assert_eq!(Outcome::parse(o.as_str()), Some(o));
    }
    for d in AuditDecision::ALL {
        assert_eq!(AuditDecision::parse(d.as_str()), Some(d));
    }
    for a in KernelAction::ALL {
        let action = AuditAction::Kernel(*a);
        assert_eq!(AuditAction::parse(a.kind(), Outcome::Ok, a.as_str()), Some(action));
    }
    let tool = AuditAction::rejected(Some("read_file"));
    assert_eq!(AuditAction::parse(AuditKind::Tool, Outcome::Ok, "read_file"), Some(tool.clone()));
    assert_eq!(AuditAction::parse(AuditKind::Effect, Outcome::Pending, "read_file"), Some(tool.clone()));
    // A parked call completed by the kernel names its tool, even one named
    // like an operator's command.
    assert_eq!(
        AuditAction::parse(AuditKind::Kernel, Outcome::Denied, "spawn"),
        Some(AuditAction::rejected(Some("spawn")))
    );
    // A rejected output keeps whatever the model named, or `(none)`.
    assert_eq!(AuditAction::parse(AuditKind::Tool, Outcome::Rejected, "(none)"), Some(AuditAction::NoTool));
    assert_eq!(
        AuditAction::parse(AuditKind::Tool, Outcome::Rejected, "read file!"),
        Some(AuditAction::BadName("read file!".into()))
    );
    // ... but only a rejected one.
    assert_eq!(AuditAction::parse(AuditKind::Tool, Outcome::Ok, "read file!"), None);
    assert_eq!(AuditAction::parse(AuditKind::State, Outcome::Ok, "grant"), None);
}

fn a_stored_value_no_record_can_have_is_corruption_not_a_default() {
    let cases = [
        ("outcome", "'parkd'"),
        ("kind", "'stat'"),
        ("actor", "'pid:x'"),
        ("action", "'lease!'"),
        ("decision", "'maybe'"),
        ("pid", "-4"),
    ];
    let mut errors = Vec::new();
    for (column, value) in cases {
        let (_dir, kernel, path) = file_kernel();
        spawn(&kernel, "g");
        let lease = lease_one(&kernel);
        kernel.commit_quantum(&lease, &commit("now", "{}", libos_kernel::Next::Continue)).unwrap();
        // Record 2 is the lease.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!("UPDATE audit SET {column} = {value} WHERE seq = 2")).unwrap();
        let err = kernel.audit(&AuditFilter::default()).unwrap_err();
        assert!(matches!(err, KernelError::Store(StoreError::Corrupt(_))), "{err:?}");
        errors.push(err.to_string());
        // Verification names the record too (its hash no longer matches).
        assert_eq!(kernel.audit_verify(None).unwrap().broken.map(|b| b.seq.get()), Some(2));
    }
    assert_eq!(
        errors,
        [
            "store is corrupt: audit record 2: field `outcome` holds `parkd`, which no record can have",
            "store is corrupt: audit record 2: field `kind` holds `stat`, which no record can have",
            "store is corrupt: audit record 2: field `actor` holds `pid:x`, which no record can have",
            "store is corrupt: audit record 2: field `action` holds `lease!`, which no record can have",
            "store is corrupt: audit record 2: field `decision` holds `maybe`, which no record can have",
            "store is corrupt: audit record 2: field `pid` holds `-4`, which no record can have",
        ]
    );
}

/// A record made from a draft is the record read back.
fn an_appended_record_is_the_record_read_back() {
    let (_dir, kernel, _path) = file_kernel();
    spawn(&kernel, "g");
    let lease = lease_one(&kernel);
    kernel.commit_quantum(&lease, &commit("now", "{}", libos_kernel::Next::Continue)).unwrap();
    let records: Vec<AuditRecord> = kernel.audit(&AuditFilter::default()).unwrap();
    let tool = records.iter().find(|r| r.kind == AuditKind::Tool).unwrap();
    assert_eq!(tool.action, AuditAction::rejected(Some("now")));
    assert_eq!(tool.actor, libos_kernel::Actor::Process(libos_kernel::Pid(1)));
}

libos_kernel::tests!(sync:
    a_chain_written_before_typed_records_reads_back_typed_and_verifies,
    every_audit_name_reads_back_as_itself,
    a_stored_value_no_record_can_have_is_corruption_not_a_default,
    an_appended_record_is_the_record_read_back,
);
