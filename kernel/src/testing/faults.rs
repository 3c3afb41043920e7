//! Store faults on demand, for tests of what a transient failure does.
//!
//! A [`Kernel`](crate::Kernel) holds one [`StoreFaults`]; a test arms it
//! ([`StoreFaults::fail`]) to make chosen store operations fail with a
//! chosen [`StoreError`] before they touch the database, as a busy or lost
//! store would, and can list the operations a run made
//! ([`StoreFaults::record`]) to aim at each in turn. An operation is named
//! by the kernel method that opened its transaction (`lease`,
//! `commit_quantum`, `recent_history`, ...). Unarmed, the hook costs every
//! operation one relaxed atomic load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::StoreError;

/// Faults to inject into one kernel's store operations (see the module docs).
#[derive(Debug, Default)]
pub struct StoreFaults {
    /// Set while a fault is planned or operations are recorded: the only
    /// thing an operation reads when neither is.
    armed: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    plan: Option<Plan>,
    recorded: Option<Vec<&'static str>>,
}

#[derive(Debug)]
struct Plan {
    /// The operation to fail (`None`: any).
    op: Option<String>,
    /// Matching operations let through before the first failure.
    skip: usize,
    /// Matching operations still to fail.
    times: usize,
    error: StoreError,
}

impl StoreFaults {
    /// Makes store operations named `op` (any, for `None`) fail with
    /// `error`: after letting `skip` of them through, the next `times`.
    /// Replaces any fault planned before.
    pub fn fail(&self, op: Option<&str>, skip: usize, times: usize, error: StoreError) {
        let mut state = self.lock();
        state.plan = Some(Plan { op: op.map(str::to_string), skip, times, error });
        self.armed.store(true, Ordering::Relaxed);
    }

    /// Starts listing the store operations made from now on (forgetting
    /// any listed before).
    pub fn record(&self) {
        self.lock().recorded = Some(Vec::new());
        self.armed.store(true, Ordering::Relaxed);
    }

    /// The operations made since [`StoreFaults::record`], in order (a
    /// failed one included).
    pub fn recorded(&self) -> Vec<&'static str> {
        self.lock().recorded.clone().unwrap_or_default()
    }

    /// How many failures of the planned fault are still to come.
    pub fn pending(&self) -> usize {
        self.lock().plan.as_ref().map_or(0, |p| p.times)
    }

    /// Drops the planned fault and stops recording: what a test reads
    /// afterwards (the run's results) is not failed by a fault the run
    /// never reached.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.plan = None;
        state.recorded = None;
        self.armed.store(false, Ordering::Relaxed);
    }

    /// Called by every store operation before it starts; `F` is the type of
    /// the closure it runs, whose name says which kernel method it is in.
    pub(crate) fn check<F>(&self) -> Result<(), StoreError> {
        if !self.armed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let op = operation(std::any::type_name::<F>());
        let mut state = self.lock();
        if let Some(recorded) = &mut state.recorded {
            recorded.push(op);
        }
        let Some(plan) = &mut state.plan else { return Ok(()) };
        if plan.times == 0 || plan.op.as_deref().is_some_and(|o| o != op) {
            return Ok(());
        }
        if plan.skip > 0 {
            plan.skip -= 1;
            return Ok(());
        }
        plan.times -= 1;
        Err(plan.error.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The function a closure type was written in:
/// `libos_kernel::kernel::sched::<impl ...Kernel>::lease::{{closure}}` is `lease`.
fn operation(closure: &'static str) -> &'static str {
    // The path's segments, skipping the generic arguments of `<impl ...>`.
    let mut depth = 0usize;
    let mut start = 0;
    let mut last = closure;
    let bytes = closure.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                let segment = &closure[start..i];
                if !segment.starts_with("{{") {
                    last = segment;
                }
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let segment = &closure[start..];
    if !segment.starts_with("{{") {
        last = segment;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_is_the_method_its_closure_is_in() {
        let names = [
            "libos_kernel::kernel::sched::<impl libos_kernel::kernel::Kernel>::lease::{{closure}}",
            "libos_kernel::kernel::inspect::<impl libos_kernel::kernel::Kernel>::recent_history::{{closure}}::{{closure}}",
            "libos_kernel::kernel::sched::<impl libos_kernel::kernel::Kernel>::commit_quantum::{{closure}}",
        ];
        assert_eq!(names.map(operation), ["lease", "recent_history", "commit_quantum"]);
    }

    /// Whether a store operation made from `_f`'s function fails.
    fn fails<F: Fn()>(faults: &StoreFaults, _f: F) -> bool {
        faults.check::<F>().is_err()
    }

    #[test]
    fn a_fault_skips_then_fails_then_lets_through() {
        let faults = StoreFaults::default();
        faults.record();
        faults.fail(Some("a_fault_skips_then_fails_then_lets_through"), 1, 2, StoreError::Busy);
        let run = || fails(&faults, || ());
        assert_eq!([run(), run(), run(), run()], [false, true, true, false]);
        faults.fail(Some("elsewhere"), 0, 1, StoreError::Busy);
        assert_eq!((run(), faults.pending()), (false, 1));
        assert_eq!(faults.recorded(), vec!["a_fault_skips_then_fails_then_lets_through"; 5]);
    }
}
