//! Running the scheduler from Python: in the foreground, or in the
//! background behind a `Run` handle.
//!
//! Both run `libos_runtime::Scheduler` on one tokio runtime shared by the
//! module, with the interpreter released: Python threads (and Python tools,
//! which attach to the interpreter on a blocking thread) go on meanwhile.
//! A foreground run looks for signals every 50 ms; a KeyboardInterrupt
//! stops the scheduler the way Ctrl-C stops `libos run` (in-flight quanta
//! are given back, every process is left runnable, parked or finished),
//! and is raised once it has stopped. A background run stops when asked
//! (`stop`, leaving a `with` block, the handle collected), or by itself
//! when it runs until idle.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use libos_kernel::KernelError;
use libos_runtime::{QuantumEnv, RunSummary, Scheduler, SchedulerConfig};
use pyo3::prelude::*;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::convert::to_py;
use crate::error;

/// How often a waiting call looks for signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The module's runtime: the schedulers' quanta, and the blocking pool
/// that Python tools run on.
pub fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("libos")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| error::other(format!("cannot start the runtime: {e}")))
}

/// A run's summary as the dict Python gets.
pub fn summary(s: &RunSummary) -> Value {
    json!({
        "quanta": s.quanta,
        "cancelled": s.cancelled,
        "finished": s.finished.iter().map(|(pid, state)| json!({
            "pid": pid.get(),
            "state": state.name(),
            "state_detail": libos_console::wire::state_detail(state),
        })).collect::<Vec<_>>(),
        "recovered": s.recovered.iter().map(|p| p.get()).collect::<Vec<_>>(),
        "backing_off": s.backing_off,
    })
}

/// Blocks (with the interpreter released) until `done` resolves, looking
/// for signals meanwhile; on one, calls `stop` and still waits for `done`.
/// Returns what `done` gave and the signal's exception (KeyboardInterrupt),
/// which the caller raises once it has kept what it must.
fn block_with_signals<T>(
    py: Python<'_>,
    done: impl Future<Output = T> + Send,
    stop: impl FnOnce() + Send,
) -> PyResult<(T, Option<PyErr>)>
where
    T: Send,
{
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(error::other("a scheduler cannot be run or waited for from inside a Python tool"));
    }
    Ok(py.detach(|| {
        rt.block_on(async move {
            tokio::pin!(done);
            let mut stop = Some(stop);
            let mut interrupted = None;
            loop {
                tokio::select! {
                    out = &mut done => return (out, interrupted),
                    () = tokio::time::sleep(SIGNAL_POLL), if stop.is_some() => {
                        if let Err(e) = Python::attach(|py| py.check_signals()) {
                            interrupted = Some(e);
                            if let Some(stop) = stop.take() {
                                stop();
                            }
                        }
                    }
                }
            }
        })
    }))
}

/// Runs a scheduler in the foreground until it returns (until idle), or
/// until Ctrl-C.
pub fn foreground(py: Python<'_>, env: Arc<QuantumEnv>, config: SchedulerConfig) -> PyResult<Value> {
    let (tx, mut rx) = watch::channel(false);
    let scheduler = Scheduler::new(env, config);
    let shutdown = async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let done = scheduler.run(shutdown);
    let (out, interrupted) = block_with_signals(py, done, move || {
        let _ = tx.send(true);
    })?;
    if let Some(e) = interrupted {
        return Err(e);
    }
    out.map(|s| summary(&s)).map_err(error::kernel)
}

/// A scheduler running in the background.
///
/// ``Kernel.start(...)`` returns one. ``stop()`` stops it cleanly (in-flight
/// quanta are given back) and returns the summary; ``wait(timeout=None)``
/// waits for a run that ends by itself (``until_idle=True``) and returns
/// its summary, or None if it is still running after `timeout` seconds.
/// As a context manager it stops when the block ends, and it stops when
/// collected: a background run never outlives its handle.
#[pyclass(module = "libos._libos", frozen)]
pub struct Run {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<Result<RunSummary, KernelError>>>>,
    /// The summary once it ended (kept for later calls).
    ended: Mutex<Option<Result<Value, String>>>,
}

impl Run {
    /// Starts a scheduler on the module's runtime.
    pub fn start(env: Arc<QuantumEnv>, config: SchedulerConfig) -> PyResult<Run> {
        let (stop, mut rx) = watch::channel(false);
        let scheduler = Scheduler::new(env, config);
        let task = runtime()?.spawn(async move {
            scheduler
                .run(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Run { stop, task: Mutex::new(Some(task)), ended: Mutex::new(None) })
    }

    fn ended(&self) -> std::sync::MutexGuard<'_, Option<Result<Value, String>>> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the task (at most `timeout`), with signals looked for.
    fn join(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Option<Value>> {
        if let Some(done) = self.ended().clone() {
            return done.map(Some).map_err(error::other);
        }
        let Some(mut task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            // Another thread is joining it: wait for its summary.
            let started = Instant::now();
            loop {
                py.detach(|| std::thread::sleep(SIGNAL_POLL));
                py.check_signals()?;
                if let Some(done) = self.ended().clone() {
                    return done.map(Some).map_err(error::other);
                }
                if timeout.is_some_and(|t| started.elapsed() >= t) {
                    return Ok(None);
                }
            }
        };
        let stop = self.stop.clone();
        let ((r, task), interrupted) = block_with_signals(
            py,
            async move {
                let r = match timeout {
                    Some(t) => tokio::time::timeout(t, &mut task).await.ok(),
                    None => Some((&mut task).await),
                };
                (r, task)
            },
            move || {
                let _ = stop.send(true);
            },
        )?;
        let Some(joined) = r else {
            *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
            return match interrupted {
                Some(e) => Err(e),
                None => Ok(None),
            };
        };
        let done = match joined {
            Ok(Ok(s)) => Ok(summary(&s)),
            Ok(Err(e)) => Err(format!("scheduler stopped: {e}")),
            Err(e) => Err(format!("scheduler stopped: {e}")),
        };
        *self.ended() = Some(done.clone());
        // Interrupted: the run was told to stop and has stopped (its
        // summary is kept for `stop` and `wait`); the interrupt goes on up.
        if let Some(e) = interrupted {
            return Err(e);
        }
        done.map(Some).map_err(error::other)
    }
}

#[pymethods]
impl Run {
    /// Stops the scheduler (in-flight quanta are given back) and returns its summary.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let _ = self.stop.send(true);
        let summary = self.join(py, None)?.unwrap_or(Value::Null);
        to_py(py, &summary)
    }

    /// Waits until the run ends by itself; its summary, or None after `timeout` seconds.
    #[pyo3(signature = (timeout=None))]
    fn wait<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout
            .map(|t| {
                Duration::try_from_secs_f64(t).map_err(|_| error::invalid("timeout must be a non-negative number"))
            })
            .transpose()?;
        match self.join(py, timeout)? {
            Some(summary) => to_py(py, &summary),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// True once the scheduler has stopped.
    #[getter]
    fn done(&self) -> bool {
        if self.ended().is_some() {
            return true;
        }
        self.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let _ = self.stop.send(true);
        self.join(py, None)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<libos.Run {}>", if self.done() { "done" } else { "running" })
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // A handle collected while its run goes on: stop the run and wait
        // for it, so nothing keeps running quanta unseen.
        let _ = self.stop.send(true);
        let task = self.task.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let (Some(task), Ok(rt)) = (task, runtime()) {
            let wait = || {
                let _ = rt.block_on(task);
            };
            // Inside the runtime (a Python tool dropping it) nothing may
            // block: the run has been told to stop, and stops on its own.
            if tokio::runtime::Handle::try_current().is_err() {
                // Python tools of in-flight quanta need the interpreter to finish.
                Python::attach(|py| py.detach(wait));
            }
        }
    }
}
