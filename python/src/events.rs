//! `Kernel.events()`: the audit log followed as it commits, as the
//! console's event stream follows it.
//!
//! Each new audit record yields, in order, a `process` event (the process
//! as it is now) when the record changed a process, an `approval` event
//! when it opened or decided a request, then the `audit` event (the record)
//! (`libos_console::record_events`). An event is a dict `{"event": NAME,
//! "seq": N, "data": {...}}`, `seq` being its record's. Commits through
//! this kernel wake a waiting iterator at once; other processes' commits
//! (a `libos run` on the same file) are seen within a poll. The async
//! iterator (`__aiter__` in `libos/__init__.py`) waits in short slices on
//! a thread, so cancelling it leaves nothing blocked for long.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use libos_kernel::{AuditFilter, AuditSeq, Kernel};
use pyo3::prelude::*;
use serde_json::{Value, json};

use crate::convert::to_py;
use crate::error;

/// Longest wait between two looks at the store (and for signals).
const SLICE: Duration = Duration::from_millis(50);
/// Records read per batch.
const BATCH: usize = 256;

/// Counts commits made through a kernel; waiters sleep on it.
#[derive(Default)]
pub struct Commits {
    count: Mutex<u64>,
    changed: Condvar,
}

impl Commits {
    /// Counts one commit and wakes every waiter.
    pub fn bump(&self) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.changed.notify_all();
    }

    fn now(&self) -> u64 {
        *self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until the count is past `seen`, or `limit` passes.
    fn wait(&self, seen: u64, limit: Duration) {
        let count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.changed.wait_timeout_while(count, limit, |c| *c == seen);
    }
}

/// An iterator over the audit log's events as they commit.
///
/// ``for event in kernel.events(): ...`` follows the log until Ctrl-C
/// (with ``idle_timeout``, until no event came for that many seconds);
/// ``poll(timeout)`` returns the next event or None; ``async for`` works
/// too. Each event is ``{"event": "process" | "approval" | "audit", "seq":
/// N, "data": {...}}`` with the HTTP API's shapes.
#[pyclass(module = "libos._libos")]
pub struct Events {
    kernel: Kernel,
    commits: Arc<Commits>,
    after: i64,
    queue: VecDeque<Value>,
    idle: Option<Duration>,
}

impl Events {
    /// Events of the records after `after` (the head when None).
    pub fn new(kernel: Kernel, commits: Arc<Commits>, after: Option<i64>, idle: Option<Duration>) -> PyResult<Events> {
        let after = match after {
            Some(n) => n,
            None => kernel.audit_head().map_err(error::kernel)?.0.get(),
        };
        Ok(Events { kernel, commits, after, queue: VecDeque::new(), idle })
    }

    /// Reads the next batch of records into the queue.
    fn fill(&mut self) -> PyResult<()> {
        let filter = AuditFilter { after: Some(AuditSeq(self.after)), first: Some(BATCH), ..AuditFilter::default() };
        let records = self.kernel.audit(&filter).map_err(error::kernel)?;
        for r in &records {
            self.after = r.seq.get();
            for (name, data) in libos_console::record_events(&self.kernel, r).map_err(error::kernel)? {
                self.queue.push_back(json!({"event": name, "seq": r.seq.get(), "data": data}));
            }
        }
        Ok(())
    }

    /// The next event, waiting at most `limit` (forever when None).
    fn next_event(&mut self, py: Python<'_>, limit: Option<Duration>) -> PyResult<Option<Value>> {
        let started = Instant::now();
        loop {
            let seen = self.commits.now();
            if self.queue.is_empty() {
                py.detach(|| self.fill())?;
            }
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            let left = match limit {
                Some(l) => match l.checked_sub(started.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Ok(None),
                },
                None => SLICE,
            };
            let commits = self.commits.clone();
            py.detach(|| commits.wait(seen, left.min(SLICE)));
            py.check_signals()?;
        }
    }
}

#[pymethods]
impl Events {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let idle = self.idle;
        self.next_event(py, idle)?.map(|e| to_py(py, &e)).transpose()
    }

    /// The next event, or None if none came within `timeout` seconds (0: only what is there).
    #[pyo3(signature = (timeout=0.0))]
    fn poll<'py>(&mut self, py: Python<'py>, timeout: f64) -> PyResult<Option<Bound<'py, PyAny>>> {
        let limit = Duration::try_from_secs_f64(timeout)
            .map_err(|_| error::invalid("timeout must be a non-negative number"))?;
        self.next_event(py, Some(limit))?.map(|e| to_py(py, &e)).transpose()
    }

    /// The sequence number of the last record read.
    #[getter]
    fn after(&self) -> i64 {
        self.after
    }
}
