//! Scheduling: round-robin within a priority (nobody falls more than two
//! rounds behind), and a higher priority first.

use std::collections::HashMap;

use libos_kernel::{Actor, AuditFilter, Pid};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{Scheduler, SchedulerConfig};
use serde_json::json;

use libos_kernel::testing::Backend;

use crate::world::{Step, World, step, world, world_on};

fn quanta(n: usize) -> Vec<Step> {
    let mut steps: Vec<Step> = (0..n - 1).map(|_| step("now", json!({}))).collect();
    steps.push(step("exit", json!({"result": "done"})));
    steps
}

/// The order in which processes were leased.
fn leases(w: &World) -> Vec<Pid> {
    w.kernel
        .audit(&AuditFilter { action: Some("lease".into()), ..Default::default() })
        .unwrap()
        .into_iter()
        .filter_map(|r| r.pid)
        .collect()
}

async fn run(w: &World, concurrency: usize) {
    let env = quantum::env(w.kernel.clone(), w.router.clone(), QuantumPolicy::default());
    let config = SchedulerConfig { until_idle: true, concurrency, ..SchedulerConfig::default() };
    Scheduler::new(env, config).run(std::future::pending()).await.unwrap();
}

async fn no_process_falls_more_than_two_rounds_behind_its_peers() {
    let w = world();
    let pids: Vec<Pid> = (0..12).map(|i| w.spawn("assistant", &format!("peer {i}"), &[], quanta(6))).collect();
    run(&w, 3).await;
    let order = leases(&w);
    assert_eq!(order.len(), 12 * 6);
    let mut counts: HashMap<Pid, usize> = pids.iter().map(|p| (*p, 0)).collect();
    for (i, pid) in order.iter().enumerate() {
        *counts.get_mut(pid).unwrap() += 1;
        // Among processes not yet finished, the spread of quanta run stays within two rounds.
        let live: Vec<usize> = counts.values().copied().filter(|c| *c < 6).collect();
        if let (Some(max), Some(min)) = (live.iter().max(), live.iter().min()) {
            assert!(max - min <= 2, "after lease {i}: a process is {} rounds behind: {counts:?}", max - min);
        }
    }
}

async fn a_higher_priority_runs_first_and_renice_takes_effect(backend: Backend) {
    let w = world_on(backend);
    let low: Vec<Pid> = (0..3).map(|i| w.spawn("assistant", &format!("low {i}"), &[], quanta(3))).collect();
    let high = w.spawn("assistant", "urgent", &[], quanta(3));
    assert_eq!(w.kernel.renice(high, 5, &Actor::operator()).unwrap(), 0);
    run(&w, 1).await;
    let order = leases(&w);
    assert_eq!(order[..3], [high, high, high], "{order:?}");
    assert!(order[3..].iter().all(|p| low.contains(p)));
    let record = w.kernel.audit(&AuditFilter { action: Some("renice".into()), ..Default::default() }).unwrap();
    assert_eq!(record[0].detail.as_deref(), Some("priority 0 -> 5"));
}

libos_kernel::on_both_stores!(async:
    a_higher_priority_runs_first_and_renice_takes_effect,
);

libos_kernel::tests!(async_multi_thread:
    no_process_falls_more_than_two_rounds_behind_its_peers,
);
