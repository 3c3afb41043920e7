//! Sleepers under a scheduler that runs until idle (issue 17, defect 2): a
//! timer that already ran out is woken, one due within the run's bound is
//! waited for, and one due later is left parked and said so.

use std::time::Duration;

use libos_kernel::{Pid, ProcState, Timestamp, WaitOn};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{RunSummary, Scheduler, SchedulerConfig};
use pretty_assertions::assert_eq;
use serde_json::json;

use libos_kernel::testing::Backend;

use crate::world::{World, step, world_on};

/// Runs a scheduler until idle, waiting at most `idle_wait` for timers.
async fn run_until_idle(w: &World, idle_wait: Duration) -> RunSummary {
    let env = quantum::env(w.kernel.clone(), w.router.clone(), QuantumPolicy::default());
    let config = SchedulerConfig { until_idle: true, idle_wait, ..SchedulerConfig::default() };
    Scheduler::new(env, config).run(std::future::pending()).await.unwrap()
}

/// The deadline `pid` sleeps until.
fn deadline(w: &World, pid: Pid) -> Timestamp {
    match w.state(pid) {
        ProcState::Waiting { on: WaitOn::Timer(until) } => until,
        other => panic!("pid {pid} is {other}, not asleep"),
    }
}

/// Regression: a process whose `sleep` had run out stayed `waiting(timer)`,
/// and a run until idle returned at once with nothing run.
async fn a_run_until_idle_wakes_a_sleeper_whose_timer_ran_out(backend: Backend) {
    let w = world_on(backend);
    let pid = w.spawn(
        "orchestrator",
        "nap",
        &[],
        vec![step("sleep", json!({"seconds": 1})), step("exit", json!({"result": "rested"}))],
    );
    // A run that waits for no timer leaves it asleep (it stops right after
    // the park, long before the second is over).
    let first = run_until_idle(&w, Duration::ZERO).await;
    let until = deadline(&w, pid);
    assert_eq!(first.parked, vec![(pid, w.state(pid))]);
    // Past the deadline: the timer has run out before the next run starts.
    while libos_kernel::clock::system_now() <= until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let summary = run_until_idle(&w, Duration::ZERO).await;
    assert_eq!(w.transcript(pid), vec!["sleep ok: slept until the deadline", "exit ok: process exited"]);
    assert_eq!((summary.quanta, summary.woken, summary.parked), (1, vec![pid], vec![]));
    assert_eq!(summary.finished, vec![(pid, w.state(pid))]);
}

/// A sleeper due within the run's bound is waited for and runs on; one due
/// past it is left asleep, and the summary says which and until when.
async fn a_run_until_idle_waits_for_timers_within_its_bound_and_leaves_the_rest_parked(backend: Backend) {
    let w = world_on(backend);
    let nap = w.spawn(
        "orchestrator",
        "nap",
        &[],
        vec![step("sleep", json!({"seconds": 0.05})), step("exit", json!({"result": "rested"}))],
    );
    let hibernate = w.spawn(
        "orchestrator",
        "hibernate",
        &[],
        vec![step("sleep", json!({"seconds": 3600})), step("exit", json!({"result": "spring"}))],
    );
    let summary = run_until_idle(&w, Duration::from_secs(60)).await;
    assert_eq!(w.transcript(nap), vec!["sleep ok: slept until the deadline", "exit ok: process exited"]);
    let until = deadline(&w, hibernate);
    assert!(until > libos_kernel::clock::system_now().plus(Duration::from_secs(3000)), "{until}");
    assert_eq!(summary.woken, vec![nap]);
    assert_eq!(summary.finished, vec![(nap, w.state(nap))]);
    assert_eq!(summary.parked, vec![(hibernate, ProcState::Waiting { on: WaitOn::Timer(until) })]);
}

libos_kernel::on_both_stores!(async:
    a_run_until_idle_wakes_a_sleeper_whose_timer_ran_out,
    a_run_until_idle_waits_for_timers_within_its_bound_and_leaves_the_rest_parked,
);
