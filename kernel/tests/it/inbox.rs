//! The inbox a lease carries: how many messages wait and which are
//! interrupts, kept by the process row (a lease must not count them) and
//! right through delivery, reading and an upgrade from a store that kept no
//! count.

use libos_kernel::ipc::{MessageFilter, MessageKind, NewMessage};
use libos_kernel::syscall::Syscall;
use libos_kernel::testing::Backend;
use libos_kernel::{Action, Actor, Kernel, Next, OpenMode, Pid, StoreLocation};
use pretty_assertions::assert_eq;

use crate::support::*;

fn send(kernel: &Kernel, to: Pid, body: &str, kind: MessageKind, channel: Option<&str>) {
    let m = NewMessage {
        to,
        body: body.to_string(),
        kind,
        channel: channel.map(str::to_string),
        correlation_id: None,
        reply_to: None,
    };
    kernel.send(&m, &Actor::operator()).unwrap();
}

/// What the next lease of `pid` says of its inbox: (unread, interrupt bodies).
fn summary(kernel: &Kernel) -> (u64, Vec<String>) {
    let lease = lease_one(kernel);
    let seen = (lease.inbox.unread, lease.inbox.interrupts.iter().map(|m| m.body.clone()).collect());
    kernel.commit_quantum(&lease, &commit("now", "{}", Next::Continue)).unwrap();
    seen
}

/// A quantum that reads (without waiting) what `filter` matches.
fn read(kernel: &Kernel, filter: MessageFilter) {
    let lease = lease_one(kernel);
    let mut c = commit("read", "{}", Next::Continue);
    c.action = Action::Syscall(Syscall::Read { filter });
    kernel.commit_quantum(&lease, &c).unwrap();
}

fn the_inbox_summary_counts_what_waits_through_delivery_and_receipt(backend: Backend) {
    let store = kernel_on(backend);
    let kernel = &store.kernel;
    let pid = spawn(kernel, "listen");
    assert_eq!(summary(kernel), (0, vec![]));
    for i in 0..3 {
        send(kernel, pid, &format!("news {i}"), MessageKind::Normal, Some("news"));
    }
    send(kernel, pid, "stop", MessageKind::Interrupt, None);
    send(kernel, pid, "chat", MessageKind::Normal, Some("chat"));
    assert_eq!(summary(kernel), (5, vec!["stop".to_string()]));
    // Reading one channel takes only its messages, oldest first.
    read(kernel, MessageFilter { channel: Some("news".into()), ..MessageFilter::default() });
    let (entries, _) = kernel.transcript(pid, None).unwrap();
    let taken = &entries.last().unwrap().result.content;
    assert!(taken.contains("news 0") && taken.contains("news 2") && !taken.contains("chat"), "{taken}");
    assert_eq!(summary(kernel), (2, vec!["stop".to_string()]));
    read(kernel, MessageFilter { kind: Some(MessageKind::Interrupt), ..MessageFilter::default() });
    assert_eq!(summary(kernel), (1, vec![]));
    // A filter nothing matches takes nothing and counts nothing off.
    read(kernel, MessageFilter { from: Some(Pid(99)), ..MessageFilter::default() });
    assert_eq!(summary(kernel), (1, vec![]));
    read(kernel, MessageFilter::default());
    assert_eq!(summary(kernel), (0, vec![]));
}

fn a_store_that_kept_no_unread_count_counts_its_inbox_when_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.db");
    let location = StoreLocation::File(path.clone());
    let kernel = Kernel::open(&location, OpenMode::Create).unwrap();
    let pid = spawn(&kernel, "listen");
    send(&kernel, pid, "one", MessageKind::Normal, None);
    send(&kernel, pid, "two", MessageKind::Interrupt, None);
    drop(kernel);
    // The store as schema 10 left it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER objects_fts_insert; DROP TRIGGER objects_fts_update; DROP TRIGGER objects_fts_delete; \
         DROP TABLE objects_fts; DROP INDEX messages_interrupts; DROP INDEX views_pinned; ALTER TABLE processes DROP COLUMN unread; \
         PRAGMA user_version = 10;",
    )
    .unwrap();
    drop(conn);
    let kernel = Kernel::open(&location, OpenMode::Existing).unwrap();
    assert_eq!(summary(&kernel), (2, vec!["two".to_string()]));
}

libos_kernel::on_both_stores!(sync: the_inbox_summary_counts_what_waits_through_delivery_and_receipt);
libos_kernel::tests!(sync: a_store_that_kept_no_unread_count_counts_its_inbox_when_upgraded);
