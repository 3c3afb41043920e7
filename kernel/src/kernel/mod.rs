//! The kernel's API: every operation is one transaction on the store.
//!
//! Operations that change a process go through [`crate::state::transition`]
//! and commit the new state, the generation bump and the audit record (plus
//! any side rows: model call, transcript entry, effect intent) together. If
//! any part fails, including the audit append, nothing commits.

mod asynch;
mod binding;
mod caps;
mod human;
mod inspect;
mod lifecycle;
mod memory;
mod ops;
mod park;
mod sched;
mod syscalls;

pub use asynch::AsyncKernel;
pub use caps::{Authorization, GrantStatus};
pub use human::{Decided, Verdict};
pub use lifecycle::MAX_GOAL_BYTES;
pub use sched::{CommitReceipt, Outlook, QuantumEnd};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::clock::SystemClock;
use crate::error::{KernelError, OpenError};
use crate::ids::{Generation, Pid};
use crate::process::ProcessInfo;
use crate::state::{Event, ProcState, transition};
use crate::store::{Appended, Durability, OpenMode, Store, StoreLocation, Tx};
use crate::testing::StoreFaults;
use crate::time::{Clock, Timestamp};

type Listener = Box<dyn Fn() + Send + Sync>;

struct Inner {
    store: Store,
    /// Where every operation reads the time (the system clock unless the
    /// kernel was opened with another, [`Kernel::open_with_clock`]).
    clock: Arc<dyn Clock>,
    listeners: Arc<Mutex<Vec<Listener>>>,
    /// Computed at open (plus what callers add with [`Kernel::protect`]):
    /// the quantum asks for them every time.
    protected: std::sync::RwLock<Vec<PathBuf>>,
    /// Faults a test planned (see [`Kernel::store_faults`]).
    faults: StoreFaults,
}

/// How [`Kernel::open_with`] opens a store.
#[derive(Clone)]
pub struct OpenOptions {
    /// Where every operation reads the time.
    pub clock: Arc<dyn Clock>,
    /// How much an SQLite file's commit survives (see [`Durability`]).
    pub durability: Durability,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { clock: Arc::new(SystemClock), durability: Durability::default() }
    }
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions").field("durability", &self.durability).finish_non_exhaustive()
    }
}

/// A handle on one store. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").field("store", &self.inner.store.path()).finish()
    }
}

impl Kernel {
    /// Opens (or, with [`OpenMode::Create`], creates) a store and migrates it.
    pub fn open(location: &StoreLocation, mode: OpenMode) -> Result<Kernel, OpenError> {
        Kernel::open_with_clock(location, mode, Arc::new(SystemClock))
    }

    /// [`Kernel::open`] with the time read from `clock`: a test of a timing
    /// rule (a lease's expiry, a timer) moves a [`crate::ManualClock`]
    /// instead of sleeping.
    pub fn open_with_clock(
        location: &StoreLocation,
        mode: OpenMode,
        clock: Arc<dyn Clock>,
    ) -> Result<Kernel, OpenError> {
        Kernel::open_with(location, mode, OpenOptions { clock, ..OpenOptions::default() })
    }

    /// [`Kernel::open`] with every option: the clock and the durability
    /// of an SQLite file's commits.
    pub fn open_with(location: &StoreLocation, mode: OpenMode, options: OpenOptions) -> Result<Kernel, OpenError> {
        let OpenOptions { clock, durability } = options;
        let listeners: Arc<Mutex<Vec<Listener>>> = Arc::default();
        // Another node's commit to a shared store wakes this one's listeners too.
        let wake = {
            let listeners = Arc::downgrade(&listeners);
            Arc::new(move || {
                if let Some(listeners) = listeners.upgrade() {
                    notify(&listeners);
                }
            })
        };
        let store = Store::open(location, mode, durability, wake)?;
        let protected = protected_paths(store.path());
        let protected = std::sync::RwLock::new(protected);
        Ok(Kernel { inner: Arc::new(Inner { store, clock, listeners, protected, faults: StoreFaults::default() }) })
    }

    /// A private in-memory kernel, for embedding and tests.
    pub fn in_memory() -> Result<Kernel, OpenError> {
        Kernel::open(&StoreLocation::Memory, OpenMode::Create)
    }

    /// The time by this kernel's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Calls `f` after every commit made through this handle (and its clones)
    /// and, on a PostgreSQL store, as another process's commit is notified.
    /// A scheduler uses it to wake at once; other processes' commits to an
    /// SQLite store are seen through [`Kernel::change_token`].
    pub fn on_commit(&self, f: impl Fn() + Send + Sync + 'static) {
        self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(f));
    }

    /// Changes whenever anyone commits to the store, this process or another.
    pub fn change_token(&self) -> Result<u64, KernelError> {
        self.inner.store.change_token()
    }

    /// Paths no tool may ever touch: the database file, its `-wal` and `-shm`
    /// siblings, the directory holding them when it is libos's own
    /// (`.libos`), the running program, and whatever [`Kernel::protect`] added.
    pub fn protected_paths(&self) -> Vec<PathBuf> {
        self.inner.protected.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `path` (a file or a directory and everything under it) out of
    /// every tool's reach: libos's configuration, an image directory, a
    /// script a model plays. A relative path is taken against the current
    /// directory. Whether or not it exists, it is protected where it is (its
    /// longest existing ancestor canonicalised, so it matches the paths tools
    /// resolve) and, when it is a symlink, where it points as well.
    pub fn protect(&self, path: &std::path::Path) {
        let mut protected = self.inner.protected.write().unwrap_or_else(|e| e.into_inner());
        for path in protected_forms(path) {
            if !protected.contains(&path) {
                protected.push(path);
            }
        }
    }

    /// How the store's group commit has gone so far (SQLite only): what
    /// the benchmark prints and the tests look at.
    pub fn group_stats(&self) -> Option<crate::store::GroupStats> {
        self.inner.store.group_stats()
    }

    /// Runs `f` in a write transaction. `f` may run more than once (see
    /// [`Store::write`]): it must change nothing outside the transaction.
    fn write<T, F: Fn(&Tx<'_>) -> Result<T, KernelError>>(&self, f: F) -> Result<T, KernelError> {
        self.inner.faults.check::<F>()?;
        let (value, changed) = self.inner.store.write(f)?;
        if changed {
            notify(&self.inner.listeners);
        }
        Ok(value)
    }

    /// [`Kernel::write`] for a lease claim (see [`Store::write_claim`]).
    fn write_claim<T, F: Fn(&Tx<'_>) -> Result<T, KernelError>>(&self, f: F) -> Result<T, KernelError> {
        self.inner.faults.check::<F>()?;
        let (value, changed) = self.inner.store.write_claim(f)?;
        if changed {
            notify(&self.inner.listeners);
        }
        Ok(value)
    }

    fn read<T, F: Fn(&Tx<'_>) -> Result<T, KernelError>>(&self, f: F) -> Result<T, KernelError> {
        self.inner.faults.check::<F>()?;
        self.inner.store.read(f)
    }

    /// Runs `f` outside an explicit transaction (see [`Store::read_unsnapshotted`]).
    fn read_latest<T, F: Fn(&Tx<'_>) -> Result<T, KernelError>>(&self, f: F) -> Result<T, KernelError> {
        self.inner.faults.check::<F>()?;
        self.inner.store.read_unsnapshotted(f)
    }

    /// The faults a test makes this kernel's store operations meet (every
    /// clone's too): none unless a test plans them.
    #[doc(hidden)]
    pub fn store_faults(&self) -> &StoreFaults {
        &self.inner.faults
    }
}

fn notify(listeners: &Mutex<Vec<Listener>>) {
    for listener in listeners.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        listener();
    }
}

/// Where `path` points, if it exists, and where it is: absolute, its longest
/// existing ancestor canonical and the rest as written (so a path that does
/// not exist yet still matches what a tool resolves, and a symlink is named
/// itself, not only its target).
fn protected_forms(path: &std::path::Path) -> Vec<PathBuf> {
    let Ok(absolute) = std::path::absolute(path) else { return vec![path.to_path_buf()] };
    let mut forms: Vec<PathBuf> = std::fs::canonicalize(&absolute).into_iter().collect();
    let (Some(mut at), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        forms.push(absolute.clone());
        return forms;
    };
    let mut tail = vec![name];
    let located = loop {
        if let Ok(mut found) = std::fs::canonicalize(at) {
            found.extend(tail.iter().rev());
            break found;
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name);
                at = parent;
            }
            _ => break absolute.clone(),
        }
    };
    if !forms.contains(&located) {
        forms.push(located);
    }
    forms
}

fn protected_paths(db: Option<&std::path::Path>) -> Vec<PathBuf> {
    // The program itself: an agent must not be able to replace libos.
    let exe = std::env::current_exe().ok().and_then(|p| std::fs::canonicalize(p).ok());
    let Some(db) = db else { return exe.into_iter().collect() };
    let db = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let mut out = vec![db.clone()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        out.push(PathBuf::from(p));
    }
    if let Some(dir) = db.parent().filter(|d| d.file_name().is_some_and(|n| n == ".libos")) {
        out.push(dir.to_path_buf());
    }
    out.extend(exe);
    out
}

/// Applies an event to a process inside `tx`: checks the generation (if the
/// caller holds one), runs the transition, writes the state and its audit record.
fn apply(
    tx: &Tx<'_>,
    pid: Pid,
    expected: Option<Generation>,
    event: Event,
    now: Timestamp,
) -> Result<(ProcState, Generation, Appended), KernelError> {
    let p = tx.process(pid)?;
    if let Some(expected) = expected
        && expected != p.generation
    {
        return Err(KernelError::Stale { pid, expected, found: p.generation });
    }
    apply_read(tx, &p, event, now)
}

/// [`apply`] to a process the caller has just read in the same transaction.
fn apply_read(
    tx: &Tx<'_>,
    p: &ProcessInfo,
    event: Event,
    now: Timestamp,
) -> Result<(ProcState, Generation, Appended), KernelError> {
    // A quantum cut short (killed, paused, its scheduler gone) may have
    // started an external effect: its outcome is recorded as unknown here,
    // whoever cuts it, so it is shown and never silently re-run.
    if matches!(p.state, ProcState::Running { .. }) {
        let why = match &event {
            Event::Kill { .. } => Some("the process was killed while it ran"),
            Event::Pause { .. } => Some("the process was paused while it ran"),
            Event::LeaseExpired => Some("the scheduler running it stopped"),
            Event::Release => Some("the scheduler gave its lease back (it shut down, or lost its store)"),
            _ => None,
        };
        if let Some(why) = why {
            lifecycle::settle_unknown_effect(tx, p.pid, why, now)?;
        }
    }
    let start_quantum = matches!(event, Event::Lease(_));
    let t = transition(p.pid, &p.state, event)?;
    let generation = tx.set_state(p.pid, p.generation, &t.next, now, start_quantum)?;
    let record = tx.append_audit(&t.record, now)?;
    if t.next.is_terminal() {
        park::on_end(tx, p.pid, now)?;
    }
    Ok((t.next, generation, record))
}
