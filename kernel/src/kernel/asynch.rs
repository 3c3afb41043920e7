//! The kernel as async code holds it: nothing that touches the store runs
//! on a tokio worker.
//!
//! Every [`Kernel`] operation is a synchronous transaction: it may wait for
//! the store's connection (another thread's write, a group commit's sync),
//! for SQLite's write lock held by another process (up to the busy
//! timeout), or for a PostgreSQL round trip. A tokio worker that waited so
//! would stall every other task on it: the scheduler's loop, lease renewal,
//! model calls in flight, the console's streams. [`AsyncKernel`] is the
//! only handle the runtime's tasks hold: its store calls run on tokio's
//! blocking pool ([`AsyncKernel::call`]) and are awaited, and it offers
//! synchronously only what never touches the store (the clock, the
//! protected paths, commit listeners). The blocking pool is also what
//! makes group commit work: commits of quanta that finish together wait on
//! separate threads and share one transaction.

use std::panic::resume_unwind;
use std::path::{Path, PathBuf};

use super::Kernel;
use crate::time::Timestamp;

/// A [`Kernel`] for async code (see the module).
#[derive(Clone, Debug)]
pub struct AsyncKernel {
    kernel: Kernel,
}

impl AsyncKernel {
    /// Wraps a kernel (a clone shares its store).
    pub fn new(kernel: Kernel) -> AsyncKernel {
        AsyncKernel { kernel }
    }

    /// Runs `f` with the synchronous kernel on tokio's blocking pool and
    /// awaits its result: the way async code reaches the store. A panic in
    /// `f` is resumed in the caller. Dropping the future does not stop `f`
    /// (a transaction runs to its commit or rollback); the writes after a
    /// lease are fenced by its generation, so a cancelled quantum's late
    /// commit is refused or stands whole.
    ///
    /// Must be called within a tokio runtime.
    pub async fn call<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&Kernel) -> T + Send + 'static,
        T: Send + 'static,
    {
        let kernel = self.kernel.clone();
        match tokio::task::spawn_blocking(move || f(&kernel)).await {
            Ok(value) => value,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => resume_unwind(panic),
                // The runtime is shutting down: it drops this future next.
                Err(_) => std::future::pending().await,
            },
        }
    }

    /// The synchronous kernel, for code that runs off the async workers
    /// (inside [`AsyncKernel::call`], a tool on the blocking pool, the
    /// sandbox proxy's threads) and for setting things up before a run.
    /// Calling its store operations from an async task is the mistake
    /// this type exists to prevent.
    pub fn blocking(&self) -> &Kernel {
        &self.kernel
    }

    /// The time by the kernel's clock (no store access).
    pub fn now(&self) -> Timestamp {
        self.kernel.now()
    }

    /// See [`Kernel::on_commit`] (no store access).
    pub fn on_commit(&self, f: impl Fn() + Send + Sync + 'static) {
        self.kernel.on_commit(f);
    }

    /// See [`Kernel::protected_paths`] (no store access).
    pub fn protected_paths(&self) -> Vec<PathBuf> {
        self.kernel.protected_paths()
    }

    /// See [`Kernel::protect`] (no store access).
    pub fn protect(&self, path: &Path) {
        self.kernel.protect(path);
    }
}

impl From<Kernel> for AsyncKernel {
    fn from(kernel: Kernel) -> AsyncKernel {
        AsyncKernel::new(kernel)
    }
}
