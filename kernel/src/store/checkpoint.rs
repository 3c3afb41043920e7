//! WAL checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside whichever commit pushes the WAL
//! past its threshold: that commit copies the log into the database and
//! fsyncs, a multi-millisecond stall in the middle of a quantum. A file store
//! turns automatic checkpoints off and this thread, on its own connection,
//! runs passive checkpoints instead (they never block writers or readers).
//! It wakes every [`PERIOD`], or sooner when the store has made
//! [`NUDGE_EVERY`] commits, and stops when the store is dropped.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

const PERIOD: Duration = Duration::from_millis(500);
/// Commits between nudges: about 1,000 WAL pages, SQLite's own default threshold.
pub(super) const NUDGE_EVERY: u64 = 256;

#[derive(Default)]
struct Signal {
    nudged: bool,
    stop: bool,
}

pub(super) struct Checkpointer {
    signal: Arc<(Mutex<Signal>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; `None` if its connection cannot open (the store
    /// then keeps SQLite's automatic checkpoints, see the caller).
    pub(super) fn start(path: &Path) -> Option<Checkpointer> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).ok()?;
        conn.busy_timeout(Duration::from_millis(100)).ok()?;
        let signal: Arc<(Mutex<Signal>, Condvar)> = Arc::default();
        let theirs = signal.clone();
        let thread =
            std::thread::Builder::new().name("libos-checkpoint".into()).spawn(move || run(&conn, &theirs)).ok()?;
        Some(Checkpointer { signal, thread: Some(thread) })
    }

    /// Asks for a checkpoint soon.
    pub(super) fn nudge(&self) {
        let (lock, cvar) = &*self.signal;
        lock.lock().unwrap_or_else(|e| e.into_inner()).nudged = true;
        cvar.notify_one();
    }
}

fn run(conn: &Connection, signal: &(Mutex<Signal>, Condvar)) {
    let (lock, cvar) = signal;
    loop {
        {
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            if !s.stop && !s.nudged {
                s = cvar.wait_timeout(s, PERIOD).map(|(s, _)| s).unwrap_or_else(|e| e.into_inner().0);
            }
            if s.stop {
                return;
            }
            s.nudged = false;
        }
        // A busy or failed checkpoint is retried on the next wake; the WAL
        // only grows meanwhile, nothing is lost.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!("wal checkpoint skipped: {e}");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.signal;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cvar.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
