//! Group commit on SQLite: writes that arrive while another is running
//! share its transaction, one COMMIT (one WAL sync under `synchronous =
//! FULL`) for all of them.
//!
//! The sequence, for each write (a *member*):
//!
//! 1. Count itself as waiting, take the connection, stop counting.
//! 2. If a group (an open `BEGIN IMMEDIATE` transaction) is there and has
//!    room, join it; otherwise commit the full one and open a new group.
//! 3. Run its closure inside `SAVEPOINT member`: `RELEASE` on success,
//!    `ROLLBACK TO` on failure (a stale generation, a refused call), so a
//!    failing member undoes only its own rows and the others stand. Its
//!    audit records are appended while it alone holds the connection, so
//!    they are contiguous in the one chain order.
//! 4. If someone is waiting for the connection and the group has room,
//!    leave the transaction open for them and wait for the group's
//!    outcome; otherwise COMMIT and tell every member how it went.
//!
//! A member is answered only after the COMMIT that made its rows durable
//! (a failed COMMIT fails every member whose rows it held; a member whose
//! own closure failed is answered at once, its rows gone either way).
//! Whoever takes the connection for anything else (a read, the change
//! counter) commits an open group first, so nothing ever reads inside a
//! transaction that may still roll back. Every closure runs on its
//! caller's own thread: nothing crosses threads but the connection.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rusqlite::Connection;

use super::db::{Chain, Conn, Tx};
use super::store_err;
use crate::error::{KernelError, StoreError};

/// The most writes one transaction holds: bounds how long the first of
/// them waits for its answer.
pub(super) const MAX_GROUP: usize = 256;

/// The connection and the group open on it.
pub(super) struct Writer {
    slot: Mutex<Slot>,
    /// Threads between "I want the connection" and having it.
    waiting: AtomicUsize,
    /// Groups committed, and the members they held (what tests and the
    /// benchmark read through [`Writer::stats`]).
    committed: Arc<Counts>,
}

/// Groups committed and their members.
#[derive(Debug, Default)]
pub(super) struct Counts {
    groups: AtomicU64,
    members: AtomicU64,
}

/// What the connection's mutex guards.
pub(super) struct Slot {
    pub(super) conn: Connection,
    group: Option<Open>,
    committed: Arc<Counts>,
}

/// The open transaction: its members so far and where they wait.
struct Open {
    members: usize,
    outcome: Arc<Outcome>,
}

/// How a group's COMMIT went, for the members waiting on it.
#[derive(Default)]
struct Outcome {
    done: Mutex<Option<Result<(), StoreError>>>,
    cvar: Condvar,
}

impl Outcome {
    fn set(&self, result: Result<(), StoreError>) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        self.cvar.notify_all();
    }

    fn wait(&self) -> Result<(), StoreError> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(result) = done.as_ref() {
                return result.clone();
            }
            done = self.cvar.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Slot {
    /// Commits the open group, if any, and answers its waiting members.
    pub(super) fn settle(&mut self) -> Result<(), StoreError> {
        let Some(open) = self.group.take() else { return Ok(()) };
        let result = run(&self.conn, "COMMIT").map_err(store_err);
        if result.is_err() && !self.conn.is_autocommit() {
            // A COMMIT that failed leaves the transaction open: nothing of
            // it may reach the disk later by someone else's COMMIT.
            let _ = run(&self.conn, "ROLLBACK");
        }
        if result.is_ok() {
            self.committed.groups.fetch_add(1, Ordering::Relaxed);
            self.committed.members.fetch_add(open.members as u64, Ordering::Relaxed);
        }
        open.outcome.set(result.clone());
        result
    }
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Writer {
        let committed = Arc::<Counts>::default();
        let slot = Slot { conn, group: None, committed: committed.clone() };
        Writer { slot: Mutex::new(slot), waiting: AtomicUsize::new(0), committed }
    }

    /// Writes waiting for the connection now, groups committed so far and
    /// the members they held.
    pub(super) fn stats(&self) -> (usize, u64, u64) {
        (
            self.waiting.load(Ordering::SeqCst),
            self.committed.groups.load(Ordering::Relaxed),
            self.committed.members.load(Ordering::Relaxed),
        )
    }

    /// The connection with no group open on it, for a read or a pragma.
    /// A COMMIT that fails here has already failed its members; the reader
    /// goes on (its read sees what is committed).
    pub(super) fn idle(&self) -> MutexGuard<'_, Slot> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let _ = slot.settle();
        slot
    }

    /// Runs `f` as one member of a group (see the module's sequence);
    /// returns its value and whether it changed any row, once its rows are
    /// committed.
    pub(super) fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, KernelError>) -> Result<(T, bool), KernelError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if slot.group.as_ref().is_some_and(|g| g.members >= MAX_GROUP) {
            // Its members have their answer from `settle`; this write starts the next group.
            let _ = slot.settle();
        }
        if slot.group.is_none() {
            run(&slot.conn, "BEGIN IMMEDIATE").map_err(store_err)?;
            slot.group = Some(Open { members: 0, outcome: Arc::default() });
        }
        if let Err(e) = run(&slot.conn, "SAVEPOINT member") {
            // The transaction is in a state nothing should be added to: end it.
            let _ = slot.settle();
            return Err(KernelError::Store(store_err(e)));
        }
        let ran = {
            let tx = Tx::new(Conn::Sqlite(&slot.conn), Chain::Held);
            catch_unwind(AssertUnwindSafe(|| f(&tx).map(|value| (value, tx.changed()))))
        };
        let kept = matches!(ran, Ok(Ok(_)));
        let ended = if kept {
            run(&slot.conn, "RELEASE member")
        } else {
            run(&slot.conn, "ROLLBACK TO member").and_then(|()| run(&slot.conn, "RELEASE member"))
        };
        let outcome = match &mut slot.group {
            Some(open) => {
                open.members += 1;
                open.outcome.clone()
            }
            None => Arc::default(),
        };
        let full = slot.group.as_ref().is_some_and(|g| g.members >= MAX_GROUP);
        let others = self.waiting.load(Ordering::SeqCst) > 0;
        let ran = match ran {
            Ok(r) => r,
            Err(panic) => {
                let _ = slot.settle();
                drop(slot);
                resume_unwind(panic);
            }
        };
        let (value, changed) = match (ran, ended) {
            (Ok(v), Ok(())) => v,
            (Err(e), _) => {
                // Its rows are gone; whoever comes next commits the others'.
                if !others {
                    let _ = slot.settle();
                }
                return Err(e);
            }
            (Ok(_), Err(e)) => {
                // A savepoint that cannot be released: the group is not to be trusted.
                let e = store_err(e);
                let _ = run(&slot.conn, "ROLLBACK");
                if let Some(open) = slot.group.take() {
                    open.outcome.set(Err(e.clone()));
                }
                return Err(KernelError::Store(e));
            }
        };
        if others && !full {
            drop(slot);
            outcome.wait()?;
        } else {
            slot.settle()?;
        }
        Ok((value, changed))
    }
}

/// Runs one statement without parameters, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}
