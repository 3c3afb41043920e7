//! The scheduler loop.
//!
//! It leases runnable processes (highest priority first, round-robin within a
//! priority) up to `concurrency` in-flight quanta, each a tokio task. It wakes
//! when a quantum ends, when this process commits anything (a listener on the
//! kernel), and every `poll` interval to look for commits by other processes
//! (the CLI in another shell) through the store's change token; an idle
//! scheduler does one cheap query per interval and nothing else.
//!
//! After every wake-up with quanta in flight it compares its in-flight set
//! with the leases the store says it holds: a quantum whose lease is gone
//! (the process was killed) is aborted at once. Leases are renewed while held.
//! On shutdown, in-flight quanta are aborted and their leases released, so
//! the store is left with every process runnable or finished.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use libos_kernel::{Generation, KernelError, Lease, Pid, ProcState, SchedulerId, Timestamp};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, Id, JoinSet};

use crate::quantum::{self, QuantumEnv, QuantumOutcome};

/// Scheduler settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Most quanta (model calls) in flight at once.
    pub concurrency: usize,
    /// How long a lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How often to look for other processes' commits.
    pub poll: Duration,
    /// Return once nothing is runnable or running.
    pub until_idle: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            concurrency: 8,
            lease_ttl: Duration::from_secs(60),
            poll: Duration::from_millis(20),
            until_idle: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Quanta committed.
    pub quanta: u64,
    /// Quanta lost because their process was killed meanwhile.
    pub cancelled: u64,
    /// Processes that reached exited, failed or killed during the run, in order.
    pub finished: Vec<(Pid, ProcState)>,
    /// Processes recovered from expired leases at start.
    pub recovered: Vec<Pid>,
}

/// What a quantum task returns.
type TaskResult = (Pid, Result<QuantumOutcome, KernelError>);
/// A task as `JoinSet::join_next_with_id` yields it.
type Joined = Result<(Id, TaskResult), tokio::task::JoinError>;

struct InFlight {
    lease: Lease,
    abort: AbortHandle,
}

/// A scheduler over one kernel.
pub struct Scheduler {
    env: Arc<QuantumEnv>,
    config: SchedulerConfig,
    id: SchedulerId,
    wake: Arc<Notify>,
}

impl Scheduler {
    /// A scheduler with a fresh id.
    pub fn new(env: Arc<QuantumEnv>, config: SchedulerConfig) -> Scheduler {
        let id = SchedulerId(format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
        let wake = Arc::new(Notify::new());
        let w = wake.clone();
        env.kernel.on_commit(move || w.notify_one());
        Scheduler { env, config, id, wake }
    }

    /// This scheduler's id (lease owner).
    pub fn id(&self) -> &SchedulerId {
        &self.id
    }

    /// Runs until `shutdown` resolves (or, with `until_idle`, until idle).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<RunSummary, KernelError> {
        let kernel = &self.env.kernel;
        let mut summary = RunSummary { recovered: kernel.recover_expired()?, ..RunSummary::default() };
        let mut tasks: JoinSet<TaskResult> = JoinSet::new();
        let mut inflight: HashMap<Pid, InFlight> = HashMap::new();
        let mut by_task: HashMap<Id, Pid> = HashMap::new();
        let mut token = kernel.change_token()?;
        let renew_every = self.config.lease_ttl / 3;
        let mut renew = tokio::time::interval(renew_every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        // `dirty`: something may have changed (a commit here or in another
        // process, a finished quantum, a deadline), so lease again. An idle
        // scheduler only reads the store's change counter once per poll.
        let mut dirty = true;
        let mut check_foreign = true;
        let mut last_cancel_check = std::time::Instant::now();
        let mut deadline: Option<Timestamp> = None;
        let result = loop {
            if dirty {
                dirty = false;
                if deadline.is_some_and(|d| d <= Timestamp::now()) {
                    kernel.wake_timers()?;
                    // Another scheduler's lease may have lapsed: take its processes over.
                    summary.recovered.extend(kernel.recover_expired()?);
                }
                let free = self.config.concurrency.saturating_sub(inflight.len());
                if free > 0 {
                    let exclude: Vec<Pid> = inflight.keys().copied().collect();
                    for lease in kernel.lease(&self.id, self.config.lease_ttl, free, &exclude)? {
                        let pid = lease.pid;
                        let handle = tasks.spawn(run_one(self.env.clone(), lease.clone()));
                        by_task.insert(handle.id(), pid);
                        inflight.insert(pid, InFlight { lease, abort: handle });
                    }
                }
                // With every slot busy there is nothing to plan: deadlines and
                // idleness matter again once a slot frees up.
                let full = inflight.len() >= self.config.concurrency;
                if full && !check_foreign {
                    continue;
                }
                // Other schedulers' leases matter when this one could be idle,
                // and now and then for takeovers (on the renew tick).
                let foreign = inflight.is_empty() || std::mem::take(&mut check_foreign);
                let outlook = kernel.runnable_outlook(&self.id, foreign)?;
                // A lapsed foreign lease is due a moment after its expiry.
                let foreign = outlook.leased_elsewhere.map(|t| t.plus(Duration::from_millis(1)));
                deadline = [outlook.next_ready, outlook.next_timer, foreign].into_iter().flatten().min();
                // Idle: nothing runnable, nothing in flight here or under
                // another scheduler's lease. Parked processes, sleepers
                // included, stay parked for the next scheduler.
                if self.config.until_idle
                    && inflight.is_empty()
                    && !outlook.runnable
                    && outlook.leased_elsewhere.is_none()
                {
                    break Ok(());
                }
            }
            tokio::select! {
                done = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    if let Some(done) = done {
                        self.finish(done, &mut inflight, &mut by_task, &mut summary)?;
                    }
                    // Collect every other quantum that has finished too, so
                    // their slots are refilled by one lease transaction.
                    while let Some(done) = tasks.try_join_next_with_id() {
                        self.finish(done, &mut inflight, &mut by_task, &mut summary)?;
                    }
                    dirty = true;
                }
                _ = self.wake.notified() => dirty = true,
                _ = tokio::time::sleep(self.config.poll) => {
                    let now = kernel.change_token()?;
                    if now != token || deadline.is_some_and(|d| d <= Timestamp::now()) {
                        token = now;
                        dirty = true;
                    }
                }
                _ = renew.tick() => {
                    if !inflight.is_empty() {
                        kernel.renew_leases(&self.id, self.config.lease_ttl)?;
                    }
                    check_foreign = true;
                    dirty = true;
                }
                () = &mut shutdown => break Ok(()),
            }
            // A kill shows as a lease no longer held; looking costs a pass
            // over this scheduler's leases, so at most once per poll.
            if !inflight.is_empty() && last_cancel_check.elapsed() >= self.config.poll {
                last_cancel_check = std::time::Instant::now();
                self.cancel_lost(&inflight)?;
            }
        };
        self.shut_down(tasks, inflight, by_task, &mut summary).await?;
        result.map(|()| summary)
    }

    /// Aborts quanta whose lease the store no longer shows (killed meanwhile).
    fn cancel_lost(&self, inflight: &HashMap<Pid, InFlight>) -> Result<(), KernelError> {
        let held: HashMap<Pid, Generation> = self.env.kernel.leased_by(&self.id)?.into_iter().collect();
        for (pid, f) in inflight {
            if held.get(pid) != Some(&f.lease.generation) && !f.abort.is_finished() {
                tracing::info!(pid = pid.get(), "lease lost, cancelling the in-flight quantum");
                f.abort.abort();
            }
        }
        Ok(())
    }

    fn finish(
        &self,
        done: Joined,
        inflight: &mut HashMap<Pid, InFlight>,
        by_task: &mut HashMap<Id, Pid>,
        summary: &mut RunSummary,
    ) -> Result<(), KernelError> {
        match done {
            Ok((id, (pid, outcome))) => {
                by_task.remove(&id);
                inflight.remove(&pid);
                match outcome {
                    Ok(QuantumOutcome::Committed(state)) => {
                        summary.quanta += 1;
                        if state.is_terminal() {
                            summary.finished.push((pid, state));
                        }
                    }
                    Ok(QuantumOutcome::Lost) => summary.cancelled += 1,
                    Err(e) => {
                        // The lease stays until it expires; recovery makes the process runnable again.
                        tracing::error!(pid = pid.get(), "quantum failed in the kernel: {e}");
                    }
                }
            }
            Err(join) => {
                if let Some(pid) = by_task.remove(&join.id()) {
                    inflight.remove(&pid);
                    summary.cancelled += 1;
                    if let Ok(p) = self.env.kernel.process(pid)
                        && p.state.is_terminal()
                    {
                        summary.finished.push((pid, p.state));
                    }
                }
            }
        }
        Ok(())
    }

    async fn shut_down(
        &self,
        mut tasks: JoinSet<TaskResult>,
        mut inflight: HashMap<Pid, InFlight>,
        mut by_task: HashMap<Id, Pid>,
        summary: &mut RunSummary,
    ) -> Result<(), KernelError> {
        for f in inflight.values() {
            f.abort.abort();
        }
        while let Some(done) = tasks.join_next_with_id().await {
            // A quantum that finished before the abort took effect committed normally.
            let leases: HashMap<Pid, Lease> = inflight.iter().map(|(p, f)| (*p, f.lease.clone())).collect();
            let pid = match &done {
                Ok((_, (pid, _))) => Some(*pid),
                Err(e) => by_task.get(&e.id()).copied(),
            };
            let aborted = done.as_ref().is_err();
            self.finish(done, &mut inflight, &mut by_task, summary)?;
            if aborted && let Some(lease) = pid.and_then(|p| leases.get(&p)) {
                match self.env.kernel.release(lease) {
                    Ok(()) | Err(KernelError::Stale { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

async fn run_one(env: Arc<QuantumEnv>, lease: Lease) -> TaskResult {
    let pid = lease.pid;
    (pid, quantum::run(env, lease).await)
}
