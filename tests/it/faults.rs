//! A transient store failure anywhere a run touches the store costs that
//! quantum at most, never the process (issue 18, typed records): a busy,
//! lost or unanswered store at each of the run's store operations in turn,
//! and the process still does its work exactly once, with nothing failed
//! and nothing shown to the model.

use std::sync::Arc;

use async_trait::async_trait;
use libos_kernel::audit::{AuditDecision, AuditKind, AuditRecord};
use libos_kernel::testing::Backend;
use libos_kernel::{AuditFilter, Pid, ProcState, StoreError};
use libos_runtime::model::Retried;
use libos_runtime::{ChatModel, ChatRequest, ChatResponse, ModelError};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::world::{Steps, World, step, world_on};

/// The world's scripted model, but its second call reports an attempt
/// before it that failed and was retried (which the quantum records).
struct Retrying(Arc<Steps>);

#[async_trait]
impl ChatModel for Retrying {
    fn profile(&self) -> &str {
        "steps"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut answer = self.0.complete(request).await?;
        if request.meta.call_index == 1 {
            answer.info.retried = vec![Retried { profile: "steps".into(), error: "HTTP 503".into() }];
        }
        Ok(answer)
    }
}

/// The world's scripted model, its answers recorded as a replay reads them
/// (a Chat Completions message).
struct Replayable(Arc<Steps>);

#[async_trait]
impl ChatModel for Replayable {
    fn profile(&self) -> &str {
        "steps"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut answer = self.0.complete(request).await?;
        let calls: Vec<_> = answer
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        answer.raw = json!({"role": "assistant", "content": null, "tool_calls": calls}).to_string();
        Ok(answer)
    }
}

/// What a run did: each process's end and transcript, and the audit
/// records other than the scheduler's leases and releases.
#[derive(Debug, PartialEq)]
struct Run {
    ends: Vec<(Pid, Option<ProcState>)>,
    transcripts: Vec<Vec<String>>,
    audit: Vec<Vec<String>>,
}

fn line(r: &AuditRecord) -> String {
    format!(
        "{} {} {} {} {} | {}",
        r.actor,
        r.kind,
        r.action,
        r.outcome,
        r.decision.map_or("-", AuditDecision::as_str),
        r.detail.clone().unwrap_or_default()
    )
}

/// One world, one orchestrator that is rejected once, writes a file and a
/// memory object, spawns a worker, then exits; with `fault`
/// planned before it runs.
async fn play(backend: Backend, fault: impl FnOnce(&World)) -> (Run, Vec<&'static str>, bool) {
    let mut w = world_on(backend);
    w.router = libos_runtime::ModelRouter::default().with_override(Arc::new(Retrying(w.model.clone())));
    w.model.script(
        "count to one",
        vec![step("memory_write", json!({"name": "count", "content": "1"})), step("exit", json!({"result": "one"}))],
    );
    let root = w.spawn(
        "orchestrator",
        "delegate",
        &["write fs:notes.txt"],
        vec![
            step("no_such_tool", json!({})),
            step("write_file", json!({"path": "notes.txt", "content": "n"})),
            step("memory_write", json!({"name": "plan", "content": "p"})),
            step("spawn", json!({"image": "worker", "goal": "count to one"})),
            step("exit", json!({"result": "done"})),
        ],
    );
    w.kernel.store_faults().record();
    fault(&w);
    w.run().await;
    let ops = w.kernel.store_faults().recorded();
    let met = w.kernel.store_faults().pending() == 0;
    // Regression: a fault the run never reached failed the reads below.
    w.kernel.store_faults().stop();
    let pids = [root, Pid(root.get() + 1)];
    let scheduling =
        |r: &AuditRecord| r.kind == AuditKind::State && ["lease", "release"].contains(&r.action.to_string().as_str());
    let run = Run {
        ends: pids.iter().map(|&p| (p, w.kernel.process(p).ok().map(|p| p.state))).collect(),
        transcripts: pids
            .iter()
            .map(|&p| if w.kernel.process(p).is_ok() { w.transcript(p) } else { Vec::new() })
            .collect(),
        // Per process: the two run side by side, so their records interleave as they may.
        audit: pids
            .iter()
            .map(|&p| {
                let records = w.kernel.audit(&AuditFilter { pid: Some(p), ..AuditFilter::default() }).unwrap();
                records.iter().filter(|r| !scheduling(r)).map(line).collect()
            })
            .collect(),
    };
    assert_eq!(w.file("notes.txt").as_deref(), Some("n"));
    assert!(w.kernel.audit_verify(None).unwrap().ok());
    (run, ops, met)
}

/// Regression: a transient error from registering a spawned image reached
/// the model as a failed `spawn`; others failed the process. Each store
/// operation of the run, in turn, fails once with a transient error.
async fn a_transient_store_error_anywhere_costs_a_quantum_not_the_process(backend: Backend) {
    let postgres = matches!(backend, Backend::Postgres(_));
    let (baseline, ops, _) = play(backend, |_| {}).await;
    let done = |r: &str| ProcState::Exited { code: 0, result: r.into() };
    assert_eq!(
        baseline.ends.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(),
        [Some(done("done")), Some(done("one"))]
    );
    // The paths a quantum takes through the kernel are all among them.
    let quantum = ["lease", "image_spec", "recent_history", "record_rejection", "record_attempt", "authorize", "caps"];
    for op in quantum.into_iter().chain(["begin_effect", "register_image", "commit_quantum"]) {
        assert!(ops.contains(&op), "{op} not in {ops:?}");
    }
    let errors = [
        StoreError::Busy,
        StoreError::Unreachable("connection reset by the test".into()),
        StoreError::CommitUnknown("connection reset by the test".into()),
    ];
    // How often the scheduler polls (leases, looks ahead, renews, and
    // reads a process whose lease a renewal no longer finds, which its own
    // quantum's commit may have just ended) depends on how its quanta
    // overlap: only the first of those is aimed at, and a run may make none.
    let polls = ["lease", "runnable_outlook", "renew_leases", "leased_by", "processes", "process"];
    for (i, op) in ops.iter().enumerate() {
        let nth = ops[..i].iter().filter(|o| *o == op).count();
        if nth > 0 && polls.contains(op) {
            continue;
        }
        let error = errors[i % errors.len()].clone();
        let backend = if postgres { Backend::postgres().unwrap() } else { Backend::Sqlite };
        let (run, _, met) = play(backend, |w| w.kernel.store_faults().fail(Some(op), nth, 1, error.clone())).await;
        assert!(met || polls.contains(op), "{op} #{nth} was never reached");
        assert_eq!(run, baseline, "with {op} #{nth} failing ({error})");
    }
}

libos_kernel::on_both_stores!(async_multi_thread: a_transient_store_error_anywhere_costs_a_quantum_not_the_process);

/// Regression: a replay read the original's recorded answers as its
/// processes asked for them, so a transient failure of the original's store
/// failed the replayed process, which looked like a replay that diverged.
/// It reads them before it starts: the replay fails with the store's error,
/// and runs once the store answers.
async fn a_transient_store_error_under_a_replay_fails_the_replay_not_its_process(backend: Backend) {
    let mut w = world_on(backend);
    w.router = libos_runtime::ModelRouter::default().with_override(Arc::new(Replayable(w.model.clone())));
    let pid = w.spawn(
        "worker",
        "note it",
        &[],
        vec![step("memory_write", json!({"name": "n", "content": "1"})), step("exit", json!({"result": "noted"}))],
    );
    w.run().await;
    w.kernel.store_faults().fail(Some("model_calls"), 0, 1, StoreError::Busy);
    let err = libos_runtime::replay::replay(&w.kernel, pid).await.unwrap_err();
    assert_eq!(err.to_string(), StoreError::Busy.to_string());
    let report = libos_runtime::replay::replay(&w.kernel, pid).await.unwrap();
    let ends: Vec<_> = report.processes.iter().map(|p| (p.original_end.clone(), p.replay_end.clone())).collect();
    assert_eq!((ends, report.matches()), (vec![("exited(0)".to_string(), "exited(0)".to_string())], true));
}

libos_kernel::on_both_stores!(async: a_transient_store_error_under_a_replay_fails_the_replay_not_its_process);
