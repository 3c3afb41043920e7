//! The scheduler loop.
//!
//! It leases runnable processes (highest priority first, round-robin within a
//! priority) up to `concurrency` in-flight quanta, each a tokio task. It wakes
//! when a quantum ends, when this process commits anything (a listener on the
//! kernel), and every `poll` interval to look for commits by other processes
//! (the CLI in another shell) through the store's change token; an idle
//! scheduler does one cheap query per interval and nothing else.
//!
//! Timers that ran out while no scheduler ran are woken as it starts. A
//! run `until_idle` returns once nothing is runnable now, nothing is in
//! flight, and no sleeper's timer is due within its `idle_wait` (one due
//! sooner is waited for); what it leaves parked is in its summary.
//!
//! The store is reached only through [`libos_kernel::AsyncKernel::call`]:
//! a pass's store work (give leases back, wake timers, take lapsed leases
//! over, lease, the outlook) is one `Plan` run on the blocking pool, so
//! the loop never waits on the store on an async worker.
//!
//! After every wake-up with quanta in flight it compares its in-flight set
//! with the leases the store says it holds: a quantum whose lease is gone
//! (the process was killed) is aborted at once. Leases are renewed while held.
//! On shutdown, in-flight quanta are aborted and their leases released, so
//! the store is left with every process runnable or finished.
//!
//! A transient store error (busy past its timeout, a PostgreSQL server out
//! of reach past the store's own reconnecting, a COMMIT whose fate is
//! unknown) costs a pass, not the run: the scheduler logs it, backs off
//! (50 ms doubling to 2 s) and goes on, until the store has kept failing
//! for `store_outage`. A quantum the store cut off gives its lease back
//! once the store answers (its generation fences the release, should the
//! quantum have committed after all), so its process runs again; leases a
//! claim may have taken unknowingly are given back too.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libos_kernel::{
    Generation, Kernel, KernelError, Lease, Pid, ProcState, ProcessFilter, SchedulerId, StoreError, Timestamp,
};
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
    /// Return once nothing is runnable or running, and no sleeper's timer
    /// is due within `idle_wait`.
    pub until_idle: bool,
    /// With `until_idle`: how far ahead a sleeper's timer may be due and
    /// still be waited for. A process whose timer is due later is left
    /// parked (in [`RunSummary::parked`]) for a later run.
    pub idle_wait: Duration,
    /// How long the store may keep failing with transient errors (busy,
    /// out of reach) before the scheduler stops with the last of them.
    pub store_outage: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            concurrency: 8,
            lease_ttl: Duration::from_secs(60),
            poll: Duration::from_millis(20),
            until_idle: false,
            idle_wait: DEFAULT_IDLE_WAIT,
            store_outage: Duration::from_secs(60),
        }
    }
}

/// How long an `until_idle` run waits for a sleeper's timer by default.
pub const DEFAULT_IDLE_WAIT: Duration = Duration::from_secs(60);

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
    /// An `until_idle` run stopped with processes backing off (after a
    /// model error) rather than waiting for their next try.
    pub backing_off: bool,
    /// Sleepers this run woke, their timers run out (before it started or
    /// while it waited for them), in order.
    pub woken: Vec<Pid>,
    /// When an `until_idle` run stopped: the processes it left waiting or
    /// paused, in pid order, with their states (a sleeper whose timer is
    /// due past [`SchedulerConfig::idle_wait`] among them).
    pub parked: Vec<(Pid, ProcState)>,
}

/// What a quantum task returns.
type TaskResult = (Pid, Result<QuantumOutcome, KernelError>);
/// A task as `JoinSet::join_next_with_id` yields it.
type Joined = Result<(Id, TaskResult), tokio::task::JoinError>;

struct InFlight {
    lease: Lease,
    abort: AbortHandle,
}

/// The first pause after a transient store error; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between two passes while the store keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What a run holds between passes.
struct Run {
    tasks: JoinSet<TaskResult>,
    inflight: HashMap<Pid, InFlight>,
    by_task: HashMap<Id, Pid>,
    /// Leases of quanta the store cut off, to give back when it answers again.
    abandoned: Vec<Lease>,
    /// A COMMIT's fate went unknown: this scheduler may hold leases it
    /// does not know of (a lease claim's), to give back.
    orphans: bool,
    summary: RunSummary,
    /// Whether start-up recovery has run.
    started: bool,
    /// The store's change token when last looked at.
    token: u64,
    /// Something may have changed: lease again.
    dirty: bool,
    /// Look at other schedulers' leases in the next pass.
    check_foreign: bool,
    last_cancel_check: Instant,
    /// The earliest backoff, timer or foreign lease expiry.
    deadline: Option<Timestamp>,
}

impl Run {
    fn new() -> Run {
        Run {
            tasks: JoinSet::new(),
            inflight: HashMap::new(),
            by_task: HashMap::new(),
            abandoned: Vec::new(),
            orphans: false,
            summary: RunSummary::default(),
            started: false,
            token: 0,
            dirty: true,
            check_foreign: true,
            last_cancel_check: Instant::now(),
            deadline: None,
        }
    }
}

/// Whether to go on after a pass.
enum Step {
    Go,
    Stop,
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
    ///
    /// A transient store error (busy, out of reach, a COMMIT whose fate is
    /// unknown) does not stop it: it logs, backs off and carries on, and
    /// stops with that error only once the store has kept failing for
    /// [`SchedulerConfig::store_outage`]. Any other error stops it.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<RunSummary, KernelError> {
        let mut run = Run::new();
        let mut renew = tokio::time::interval(self.config.lease_ttl / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        // Since when the store has been failing, and the next pause.
        let mut failing: Option<(Instant, Duration)> = None;
        let result = loop {
            match self.step(&mut run, &mut renew, shutdown.as_mut()).await {
                Ok(Step::Go) => failing = None,
                Ok(Step::Stop) => break Ok(()),
                Err(e) if e.is_transient() => {
                    run.orphans |= matches!(e, KernelError::Store(StoreError::CommitUnknown(_)));
                    let (since, pause) = failing.get_or_insert((Instant::now(), FIRST_BACKOFF));
                    if since.elapsed() >= self.config.store_outage {
                        break Err(e);
                    }
                    let wait = *pause;
                    *pause = (wait * 2).min(MAX_BACKOFF);
                    tracing::warn!("store: {e}; trying again in {} ms", wait.as_millis());
                    // Whatever the failed pass meant to do is still to do.
                    run.dirty = true;
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.as_mut() => break Ok(()),
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let summary = self.shut_down(run).await?;
        result.map(|()| summary)
    }

    /// One pass: lease into free slots if anything changed, then wait for
    /// the next thing to happen.
    async fn step(
        &self,
        run: &mut Run,
        renew: &mut tokio::time::Interval,
        shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Step, KernelError> {
        let kernel = &self.env.kernel;
        if !run.started {
            let (recovered, woken, token) = kernel
                .call(|k| -> Result<_, KernelError> {
                    // Timers that ran out while no scheduler ran are due now.
                    Ok((k.recover_expired()?, k.wake_timers()?, k.change_token()?))
                })
                .await?;
            run.summary.recovered.extend(recovered);
            run.summary.woken.extend(woken);
            run.token = token;
            run.started = true;
        }
        // `dirty`: something may have changed (a commit here or in another
        // process, a finished quantum, a deadline), so lease again. An idle
        // scheduler only reads the store's change counter once per poll.
        if run.dirty {
            run.dirty = false;
            let plan = Plan {
                id: self.id.clone(),
                ttl: self.config.lease_ttl,
                abandoned: std::mem::take(&mut run.abandoned),
                orphans: run.orphans.then(|| run.inflight.keys().copied().collect()),
                due: run.deadline.is_some_and(|d| d <= kernel.now()),
                free: self.config.concurrency.saturating_sub(run.inflight.len()),
                exclude: run.inflight.keys().copied().collect(),
                inflight: run.inflight.len(),
                concurrency: self.config.concurrency,
                check_foreign: run.check_foreign,
            };
            // The whole pass is one hop off the async workers.
            let mut done = kernel.call(move |k| plan.run(k)).await;
            run.abandoned = std::mem::take(&mut done.abandoned);
            if done.orphans_released {
                run.orphans = false;
            }
            run.summary.woken.extend(std::mem::take(&mut done.woken));
            run.summary.recovered.extend(std::mem::take(&mut done.recovered));
            for lease in std::mem::take(&mut done.leases) {
                let pid = lease.pid;
                let handle = run.tasks.spawn(run_one(self.env.clone(), lease.clone()));
                run.by_task.insert(handle.id(), pid);
                run.inflight.insert(pid, InFlight { lease, abort: handle });
            }
            if let Some(e) = done.error {
                return Err(e);
            }
            // With every slot busy there is nothing to plan: deadlines and
            // idleness matter again once a slot frees up.
            let Some(outlook) = done.outlook else { return Ok(Step::Go) };
            run.check_foreign = false;
            // A lapsed foreign lease is due a moment after its expiry.
            let foreign = outlook.leased_elsewhere.map(|t| t.plus(Duration::from_millis(1)));
            run.deadline = [outlook.next_ready, outlook.next_timer, foreign].into_iter().flatten().min();
            // Idle: nothing runnable now, nothing in flight here or under
            // another scheduler's lease, nothing left to give back, and no
            // sleeper due within the bound (one due sooner is waited for:
            // `deadline` wakes it). Other parked processes, and sleepers
            // due later, stay parked for the next scheduler; so do
            // processes backing off after a model error (waiting out a
            // dead endpoint is not "until idle").
            let bound = kernel.now().plus(self.config.idle_wait);
            if self.config.until_idle
                && run.inflight.is_empty()
                && run.abandoned.is_empty()
                && !outlook.runnable_now
                && outlook.leased_elsewhere.is_none()
                && outlook.next_timer.is_none_or(|t| t > bound)
            {
                run.summary.backing_off = outlook.runnable;
                run.summary.parked = kernel
                    .call(|k| k.processes(ProcessFilter::Live))
                    .await?
                    .into_iter()
                    .filter(|p| matches!(p.state, ProcState::Waiting { .. } | ProcState::Paused { .. }))
                    .map(|p| (p.pid, p.state))
                    .collect();
                return Ok(Step::Stop);
            }
        }
        tokio::select! {
            done = run.tasks.join_next_with_id(), if !run.tasks.is_empty() => {
                if let Some(done) = done {
                    self.finish(done, run).await;
                }
                // Collect every other quantum that has finished too, so
                // their slots are refilled by one lease transaction.
                while let Some(done) = run.tasks.try_join_next_with_id() {
                    self.finish(done, run).await;
                }
                run.dirty = true;
            }
            _ = self.wake.notified() => run.dirty = true,
            _ = tokio::time::sleep(self.config.poll) => {
                let now = kernel.call(Kernel::change_token).await?;
                if now != run.token || run.deadline.is_some_and(|d| d <= self.env.kernel.now()) {
                    run.token = now;
                    run.dirty = true;
                }
            }
            _ = renew.tick() => {
                run.check_foreign = true;
                run.dirty = true;
                if !run.inflight.is_empty() {
                    let (id, ttl) = (self.id.clone(), self.config.lease_ttl);
                    kernel.call(move |k| k.renew_leases(&id, ttl)).await?;
                }
            }
            () = shutdown => return Ok(Step::Stop),
        }
        // A kill shows as a lease no longer held; looking costs a pass
        // over this scheduler's leases, so at most once per poll.
        if !run.inflight.is_empty() && run.last_cancel_check.elapsed() >= self.config.poll {
            run.last_cancel_check = Instant::now();
            self.cancel_lost(&run.inflight).await?;
        }
        Ok(Step::Go)
    }

    /// Aborts quanta whose lease the store no longer shows because their
    /// process was killed, paused or leased again elsewhere. A lease also
    /// ends when its own quantum commits, and the quantum's task finishes
    /// a moment after its commit (on the blocking pool) returns: a
    /// process that is runnable, waiting or ended is left to it, so a
    /// committed quantum is never counted as cancelled.
    async fn cancel_lost(&self, inflight: &HashMap<Pid, InFlight>) -> Result<(), KernelError> {
        let id = self.id.clone();
        let ours: Vec<(Pid, Generation)> = inflight
            .iter()
            .filter(|(_, f)| !f.abort.is_finished())
            .map(|(pid, f)| (*pid, f.lease.generation))
            .collect();
        let lost: Vec<Pid> = self
            .env
            .kernel
            .call(move |k| -> Result<Vec<Pid>, KernelError> {
                let held: HashMap<Pid, Generation> = k.leased_by(&id)?.into_iter().collect();
                let mut lost = Vec::new();
                for (pid, generation) in ours {
                    if held.get(&pid) == Some(&generation) {
                        continue;
                    }
                    let taken = match k.process(pid) {
                        Ok(p) => {
                            matches!(
                                p.state,
                                ProcState::Killed { .. } | ProcState::Paused { .. } | ProcState::Running { .. }
                            )
                        }
                        Err(KernelError::NoSuchProcess(_)) => true,
                        Err(e) => return Err(e),
                    };
                    if taken {
                        lost.push(pid);
                    }
                }
                Ok(lost)
            })
            .await?;
        for pid in lost {
            if let Some(f) = inflight.get(&pid).filter(|f| !f.abort.is_finished()) {
                tracing::info!(pid = pid.get(), "lease lost, cancelling the in-flight quantum");
                f.abort.abort();
            }
        }
        Ok(())
    }

    async fn finish(&self, done: Joined, run: &mut Run) {
        match done {
            Ok((id, (pid, outcome))) => {
                run.by_task.remove(&id);
                let lease = run.inflight.remove(&pid).map(|f| f.lease);
                match outcome {
                    Ok(QuantumOutcome::Committed(state)) => {
                        run.summary.quanta += 1;
                        if state.is_terminal() {
                            run.summary.finished.push((pid, state));
                        }
                    }
                    Ok(QuantumOutcome::Lost) => run.summary.cancelled += 1,
                    Err(e) if e.is_transient() => {
                        // Cut off by the store (out of reach, or a COMMIT
                        // whose fate is unknown): the lease is given back,
                        // so the process runs again. Its generation fences
                        // the release should the quantum have committed.
                        tracing::warn!(pid = pid.get(), "quantum cut off by the store: {e}; giving its lease back");
                        run.summary.cancelled += 1;
                        run.abandoned.extend(lease);
                    }
                    Err(e) => {
                        // The lease stays until it expires; recovery makes the process runnable again.
                        tracing::error!(pid = pid.get(), "quantum failed in the kernel: {e}");
                    }
                }
            }
            Err(join) => {
                if let Some(pid) = run.by_task.remove(&join.id()) {
                    run.inflight.remove(&pid);
                    run.summary.cancelled += 1;
                    if let Ok(p) = self.env.kernel.call(move |k| k.process(pid)).await
                        && p.state.is_terminal()
                    {
                        run.summary.finished.push((pid, p.state));
                    }
                }
            }
        }
    }

    /// Aborts the quanta in flight and gives back their leases (and any
    /// left from quanta the store cut off); a store still out of reach
    /// leaves them to lapse.
    async fn shut_down(&self, mut run: Run) -> Result<RunSummary, KernelError> {
        for f in run.inflight.values() {
            f.abort.abort();
        }
        let leases: HashMap<Pid, Lease> = run.inflight.iter().map(|(p, f)| (*p, f.lease.clone())).collect();
        let mut tasks = std::mem::replace(&mut run.tasks, JoinSet::new());
        while let Some(done) = tasks.join_next_with_id().await {
            // A quantum that finished before the abort took effect committed normally.
            let pid = match &done {
                Ok((_, (pid, _))) => Some(*pid),
                Err(e) => run.by_task.get(&e.id()).copied(),
            };
            let aborted = done.as_ref().is_err();
            self.finish(done, &mut run).await;
            if aborted && let Some(lease) = pid.and_then(|p| leases.get(&p)) {
                run.abandoned.push(lease.clone());
            }
        }
        let abandoned = std::mem::take(&mut run.abandoned);
        let (left, result) = self.env.kernel.call(move |k| release_abandoned(k, abandoned)).await;
        match result {
            Ok(()) => {}
            Err(e) if e.is_transient() => tracing::warn!("store: {e}; {} leases left to lapse", left.len()),
            Err(e) => return Err(e),
        }
        Ok(run.summary)
    }
}

/// What a pass asks of the store, in its order: give back the leases of
/// quanta the store cut off, and those a claim may have taken unknowingly;
/// wake due timers and take over lapsed leases when a deadline passed;
/// lease into the free slots; and, unless every slot is busy and no look
/// at other schedulers is due, the outlook.
struct Plan {
    id: SchedulerId,
    ttl: Duration,
    abandoned: Vec<Lease>,
    /// `Some(in flight)` when a COMMIT went unanswered: leases held but
    /// not known of are given back, these kept.
    orphans: Option<Vec<Pid>>,
    due: bool,
    free: usize,
    exclude: Vec<Pid>,
    inflight: usize,
    concurrency: usize,
    check_foreign: bool,
}

/// What a [`Plan`] did; on an error, what it did before it.
#[derive(Default)]
struct Planned {
    abandoned: Vec<Lease>,
    orphans_released: bool,
    woken: Vec<Pid>,
    recovered: Vec<Pid>,
    leases: Vec<Lease>,
    outlook: Option<libos_kernel::Outlook>,
    error: Option<KernelError>,
}

impl Plan {
    /// Runs on a blocking thread ([`libos_kernel::AsyncKernel::call`]).
    fn run(self, k: &Kernel) -> Planned {
        let mut done = Planned::default();
        if let Err(e) = self.steps(k, &mut done) {
            done.error = Some(e);
        }
        done
    }

    fn steps(self, k: &Kernel, done: &mut Planned) -> Result<(), KernelError> {
        let (left, released) = release_abandoned(k, self.abandoned);
        done.abandoned = left;
        released?;
        if let Some(keep) = &self.orphans {
            let released = k.release_orphans(&self.id, keep)?;
            if !released.is_empty() {
                tracing::warn!("gave back {} leases taken by a claim whose commit went unanswered", released.len());
            }
            done.orphans_released = true;
        }
        if self.due {
            done.woken = k.wake_timers()?;
            // Another scheduler's lease may have lapsed: take its processes over.
            done.recovered = k.recover_expired()?;
        }
        if self.free > 0 {
            done.leases = k.lease(&self.id, self.ttl, self.free, &self.exclude)?;
        }
        let inflight = self.inflight + done.leases.len();
        if inflight >= self.concurrency && !self.check_foreign {
            return Ok(());
        }
        // Other schedulers' leases matter when this one could be idle,
        // and now and then for takeovers (on the renew tick).
        let foreign = inflight == 0 || self.check_foreign;
        done.outlook = Some(k.runnable_outlook(&self.id, foreign)?);
        Ok(())
    }
}

/// Gives back the leases of quanta the store cut off (see
/// [`Scheduler::finish`]); returns those it could not, with the error.
fn release_abandoned(k: &Kernel, mut abandoned: Vec<Lease>) -> (Vec<Lease>, Result<(), KernelError>) {
    while let Some(lease) = abandoned.last() {
        match k.release(lease) {
            // Stale: the quantum did commit after all (or the process was killed meanwhile).
            Ok(()) | Err(KernelError::Stale { .. }) => {}
            Err(e) => return (abandoned, Err(e)),
        }
        abandoned.pop();
    }
    (abandoned, Ok(()))
}

async fn run_one(env: Arc<QuantumEnv>, lease: Lease) -> TaskResult {
    let pid = lease.pid;
    (pid, quantum::run(env, lease).await)
}
