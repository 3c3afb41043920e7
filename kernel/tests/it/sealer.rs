//! PostgreSQL's sealer: writers append audit records unsealed, one elected
//! sealer per store numbers and chains them after commit, another takes
//! over when it goes, and verification covers the sealed chain and the
//! records still waiting.

use std::time::{Duration, Instant};

use libos_kernel::audit::{AuditKind, GENESIS, KernelAction};
use libos_kernel::testing::{Connection, ScratchSchema};
use libos_kernel::{Actor, Kernel, Next, OpenMode, StoreLocation, VerifyReport};
use pretty_assertions::assert_eq;

use crate::support::*;

/// Takes this schema's sealer election on the test's own connection, as a
/// sealer would (the same session-level advisory lock): no kernel's sealer
/// seals until the connection ends.
fn hold_election(schema: &ScratchSchema) -> Connection {
    let db = schema.connect().unwrap();
    db.query("SELECT pg_advisory_lock(hashtext(current_database() || '.' || current_schema()), 1)").unwrap();
    db
}

fn open(url: String) -> Kernel {
    Kernel::open(&StoreLocation::Url(url), OpenMode::Create).unwrap()
}

fn count(schema: &ScratchSchema, filter: &str) -> u64 {
    let db = schema.connect().unwrap();
    db.cell(&format!("SELECT count(*) FROM audit {filter}")).unwrap().unwrap().parse().unwrap()
}

/// Waits (up to a minute: the machine is shared) until no record waits
/// for sealing, reading only what `audit verify` reads (which seals nothing).
fn until_sealed(kernel: &Kernel) -> VerifyReport {
    let start = Instant::now();
    loop {
        let report = kernel.audit_verify(None).unwrap();
        if report.unsealed == 0 {
            return report;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "records still wait for sealing: {report:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every process's state records, in chain order, follow on from each
/// other (`a -> b` then `b -> c`): what each node did to a process is
/// chained in the order it happened.
fn transitions_follow_on(kernel: &Kernel) -> Vec<String> {
    let mut last: std::collections::HashMap<i64, String> = Default::default();
    let mut broken = Vec::new();
    for r in kernel.audit(&Default::default()).unwrap() {
        let Some(pid) = r.pid else { continue };
        if r.kind == AuditKind::Operator && r.action.is(KernelAction::Spawn) {
            last.insert(pid.get(), "runnable".to_string());
        }
        if r.kind != AuditKind::State {
            continue;
        }
        let Some((from, to)) = r.detail.as_deref().and_then(|d| d.split_once(" -> ")) else { continue };
        if last.get(&pid.get()).map(String::as_str) != Some(from) {
            broken.push(format!(
                "record {}: process {pid} went {from} -> {to} after {:?}",
                r.seq,
                last.get(&pid.get())
            ));
        }
        last.insert(pid.get(), to.to_string());
    }
    broken
}

fn several_nodes_committing_at_once_make_one_chain_covering_every_record() {
    let Some(schema) = ScratchSchema::new() else { return };
    open(schema.url());
    const NODES: usize = 4;
    const EACH: usize = 12;
    std::thread::scope(|s| {
        for node in 0..NODES {
            let kernel = open(schema.url_named(&format!("sealer_node_{node}")));
            s.spawn(move || {
                let pids: Vec<_> = (0..EACH).map(|i| spawn(&kernel, &format!("node {node} process {i}"))).collect();
                // Lease and commit whatever is runnable: nodes take each other's processes.
                for _ in 0..EACH * 2 {
                    let Some(lease) =
                        kernel.lease(&owner(), Duration::from_secs(60), 1, &[]).unwrap().into_iter().next()
                    else {
                        break;
                    };
                    // Another node that finished first may have killed this
                    // one meanwhile (its own process): the commit is then stale.
                    match kernel.commit_quantum(&lease, &commit("now", "{}", Next::Continue)) {
                        Ok(_) | Err(libos_kernel::KernelError::Stale { .. }) => {}
                        Err(e) => panic!("commit failed: {e}"),
                    }
                }
                for pid in pids.iter().step_by(3) {
                    kernel.kill(*pid, Actor::operator(), "enough").unwrap();
                }
            });
        }
    });
    let kernel = open(schema.url());
    kernel.seal_audit().unwrap();
    let report = kernel.audit_verify(None).unwrap();
    let total = count(&schema, "");
    assert_eq!((report.broken.clone(), report.unsealed, report.records), (None, 0, total), "{report:?}");
    assert!(total >= (NODES * EACH * 2) as u64, "only {total} records");
    assert_eq!(transitions_follow_on(&kernel), Vec::<String>::new());
}

fn records_wait_for_sealing_and_verify_reports_them_until_another_sealer_takes_over() {
    let Some(schema) = ScratchSchema::new() else { return };
    let sealer = hold_election(&schema);
    let kernel = open(schema.url());
    let a = spawn(&kernel, "first");
    spawn(&kernel, "second");
    let lease = lease_one(&kernel);
    kernel.commit_quantum(&lease, &commit("now", "{}", Next::Continue)).unwrap();
    kernel.kill(a, Actor::operator(), "enough").unwrap();
    let waiting = count(&schema, "WHERE seq IS NULL");
    assert!(waiting >= 5, "only {waiting} records wait");
    assert_eq!(
        kernel.audit_verify(None).unwrap(),
        VerifyReport { records: 0, head: GENESIS.to_string(), broken: None, unsealed: waiting }
    );
    // The sealer's node dies: the kernel's own sealer is elected and seals.
    drop(sealer);
    let report = until_sealed(&kernel);
    let (seq, head) = kernel.audit_head().unwrap();
    assert_eq!(report, VerifyReport { records: waiting, head, broken: None, unsealed: 0 });
    assert_eq!(seq.get() as u64, waiting);
    assert_eq!(transitions_follow_on(&kernel), Vec::<String>::new());
}

fn a_sealer_whose_session_is_cut_off_is_replaced_and_sealing_continues() {
    let Some(schema) = ScratchSchema::new() else { return };
    let first = open(schema.url_named("sealer_first"));
    let elected = |name: &str| -> bool {
        let db = schema.connect().unwrap();
        let holder = db
            .cell(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.objid = 1 AND l.granted \
                 AND l.classid = hashtext(current_database() || '.' || current_schema())::oid",
            )
            .unwrap();
        holder.as_deref() == Some(name)
    };
    let start = Instant::now();
    while !elected("sealer_first-sealer") {
        assert!(start.elapsed() < Duration::from_secs(60), "the first store's sealer was never elected");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = open(schema.url_named("sealer_second"));
    spawn(&first, "before");
    until_sealed(&second);
    // The elected sealer's session goes; the other store's sealer (or the
    // first's, connected again) takes over.
    assert_eq!(schema.terminate_sessions("sealer_first-sealer").unwrap(), 1);
    spawn(&second, "after");
    spawn(&first, "after, too");
    let report = until_sealed(&second);
    assert_eq!((report.broken, report.records), (None, count(&schema, "")));
    assert_eq!(report.records, 3, "three spawns");
}

fn tampering_with_sealed_and_waiting_records_is_detected() {
    let Some(schema) = ScratchSchema::new() else { return };
    let sealer = hold_election(&schema);
    let kernel = open(schema.url());
    spawn(&kernel, "sealed");
    kernel.seal_audit().unwrap();
    let sealed = count(&schema, "");
    spawn(&kernel, "waiting");
    let db = schema.connect().unwrap();

    // A sealed record altered: named by its seq.
    db.query(
        "CREATE TABLE kept AS SELECT * FROM audit WHERE seq = 1; UPDATE audit SET action = 'forged' WHERE seq = 1",
    )
    .unwrap();
    let report = kernel.audit_verify(None).unwrap();
    assert_eq!(report.broken.map(|b| b.seq.get()), Some(1));
    db.query("UPDATE audit SET action = (SELECT action FROM kept) WHERE seq = 1").unwrap();
    assert_eq!(kernel.audit_verify(None).unwrap().broken, None);

    // A record waiting for sealing altered: named by its id, where it
    // would be sealed, and never sealed.
    let id = db.cell("SELECT max(id) FROM audit WHERE seq IS NULL").unwrap().unwrap();
    db.query(&format!("UPDATE audit SET at = at + 1 WHERE id = {id}")).unwrap();
    let report = kernel.audit_verify(None).unwrap();
    let broken = report.broken.clone().unwrap();
    assert_eq!((broken.seq.get() as u64, report.records), (sealed + 1, sealed));
    assert!(broken.problem.contains(&format!("record {id}, waiting for sealing")), "{}", broken.problem);
    drop(sealer);
    kernel.seal_audit().unwrap();
    assert_eq!(count(&schema, &format!("WHERE id = {id} AND seq IS NULL")), 1, "an altered record was sealed");
    assert!(!kernel.audit_verify(None).unwrap().ok());
}

libos_kernel::on_postgres!(sync:
    several_nodes_committing_at_once_make_one_chain_covering_every_record,
    records_wait_for_sealing_and_verify_reports_them_until_another_sealer_takes_over,
    a_sealer_whose_session_is_cut_off_is_replaced_and_sealing_continues,
    tampering_with_sealed_and_waiting_records_is_detected,
);
