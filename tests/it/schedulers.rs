//! Two schedulers on one store: no process runs in both at once, none is
//! lost, every quantum is counted once; a store that stays busy holds a
//! scheduler up without stopping it.

use libos_kernel::audit::AuditKind;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use libos_images::ImageSet;
use libos_kernel::budget::Budget;
use libos_kernel::testing::Backend;
use libos_kernel::{
    Actor, AuditFilter, Kernel, KernelError, OpenMode, Pid, ProcState, ProcessFilter, SpawnSpec, StoreError,
};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{
    ChatModel, ChatRequest, ChatResponse, ModelError, ModelRouter, RawToolCall, Scheduler, SchedulerConfig,
};

/// Answers `now` four times then `exit`, and records, per process, how many
/// of its calls are in flight at once (across both schedulers).
#[derive(Default)]
struct Counting {
    inflight: Mutex<HashMap<Pid, usize>>,
    worst: Mutex<usize>,
    calls: Mutex<HashMap<Pid, usize>>,
}

#[async_trait]
impl ChatModel for Counting {
    fn profile(&self) -> &str {
        "counting"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let pid = request.meta.pid;
        {
            let mut inflight = self.inflight.lock().unwrap();
            let n = inflight.entry(pid).or_default();
            *n += 1;
            let mut worst = self.worst.lock().unwrap();
            *worst = (*worst).max(*n);
            *self.calls.lock().unwrap().entry(pid).or_default() += 1;
        }
        // Hold the call open a moment, so the two schedulers overlap.
        tokio::time::sleep(Duration::from_millis(2)).await;
        *self.inflight.lock().unwrap().get_mut(&pid).unwrap() -= 1;
        let (name, arguments) = if request.meta.call_index < 4 {
            ("now", "{}".to_string())
        } else {
            ("exit", r#"{"result":"done"}"#.to_string())
        };
        Ok(ChatResponse {
            model: "counting".into(),
            content: None,
            tool_calls: vec![RawToolCall { id: format!("c{}", request.meta.call_index), name: name.into(), arguments }],
            usage: None,
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

async fn two_schedulers_share_a_store_without_running_a_process_twice(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let location = backend.location(&dir.path().join("libos.db"));
    let a = Kernel::open(&location, OpenMode::Create).unwrap();
    let b = Kernel::open(&location, OpenMode::Existing).unwrap();
    let images = ImageSet::shipped().unwrap();
    let image = images.get("assistant").unwrap();
    let digest = a.register_image(&image.name, &image.version, &image.source).unwrap();
    for i in 0..60 {
        let spec = SpawnSpec {
            image: digest.clone(),
            goal: format!("task {i}"),
            workspace: dir.path().to_path_buf(),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget: Budget::unlimited(),
        };
        a.spawn_with_grants(&spec, &image.grants).unwrap();
    }
    let model = Arc::new(Counting::default());
    let scheduler = |k: &Kernel| {
        let router = ModelRouter::default().with_override(model.clone());
        let env = quantum::env(k.clone(), router, QuantumPolicy::default());
        let config = SchedulerConfig { until_idle: true, concurrency: 8, ..SchedulerConfig::default() };
        Scheduler::new(env, config)
    };
    let (sa, sb) = (scheduler(&a), scheduler(&b));
    let (ra, rb) = tokio::join!(sa.run(std::future::pending()), sb.run(std::future::pending()));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());

    assert_eq!(*model.worst.lock().unwrap(), 1, "a process had two calls in flight at once");
    assert!(ra.quanta > 0 && rb.quanta > 0, "both schedulers worked: {} and {}", ra.quanta, rb.quanta);
    assert_eq!(ra.quanta + rb.quanta, 60 * 5, "every quantum is counted once");
    let procs = a.processes(ProcessFilter::All).unwrap();
    assert!(procs.iter().all(|p| p.state == ProcState::Exited { code: 0, result: "done".into() }));
    assert!(procs.iter().all(|p| p.usage.quanta == 5 && p.usage.model_calls == 5));
    assert!(model.calls.lock().unwrap().values().all(|n| *n == 5));
    assert!(a.audit_verify(None).unwrap().ok());
}

libos_kernel::on_both_stores!(async_multi_thread: two_schedulers_share_a_store_without_running_a_process_twice);

/// Answers `exit`; on its first call it first locks the store from another
/// connection for [`LOCK_HELD`], so the quantum's commit finds the store
/// busy past its timeout, and says so on `locked`.
struct Locking {
    db: std::path::PathBuf,
    calls: Mutex<usize>,
    locked: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// How long [`Locking`] holds the store: past the 5 s busy timeout of the
/// quantum's commit, which starts as the model answers but may first wait
/// for the kernel's connection behind another write waiting out its own.
const LOCK_HELD: Duration = Duration::from_secs(12);

#[async_trait]
impl ChatModel for Locking {
    fn profile(&self) -> &str {
        "locking"
    }

    async fn complete(&self, _request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let first = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls == 1
        };
        if first {
            let conn = rusqlite::Connection::open(&self.db).unwrap();
            conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(LOCK_HELD);
                conn.execute_batch("ROLLBACK").unwrap();
            });
            if let Some(tx) = self.locked.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
        Ok(ChatResponse {
            model: "locking".into(),
            content: None,
            tool_calls: vec![RawToolCall {
                id: "c".into(),
                name: "exit".into(),
                arguments: r#"{"result":"done"}"#.into(),
            }],
            usage: None,
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

/// Issue 14, hole 7, at the scheduler: any store error stopped it. A store
/// busy past its timeout now costs one quantum, whose lease is given back
/// once the store answers again; the process runs again and ends once. A
/// scheduler allowed no outage (`store_outage` zero) stops with the error.
async fn a_store_busy_past_its_timeout_holds_a_scheduler_up_and_does_not_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("libos.db");
    let location = libos_kernel::StoreLocation::File(db.clone());
    let kernel = Kernel::open(&location, OpenMode::Create).unwrap();
    let images = ImageSet::shipped().unwrap();
    let image = images.get("assistant").unwrap();
    let digest = kernel.register_image(&image.name, &image.version, &image.source).unwrap();
    let spec = SpawnSpec {
        image: digest,
        goal: "exit".into(),
        workspace: dir.path().to_path_buf(),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: Budget::unlimited(),
    };
    let pid = kernel.spawn_with_grants(&spec, &image.grants).unwrap();

    let (tx, locked) = tokio::sync::oneshot::channel();
    let model = Arc::new(Locking { db, calls: Mutex::new(0), locked: Mutex::new(Some(tx)) });
    let router = ModelRouter::default().with_override(model.clone());
    let config = SchedulerConfig { until_idle: true, poll: Duration::from_millis(5), ..SchedulerConfig::default() };
    let patient = Scheduler::new(quantum::env(kernel.clone(), router.clone(), QuantumPolicy::default()), config);
    let patient = tokio::spawn(async move { patient.run(std::future::pending()).await });

    locked.await.unwrap();
    let other = Kernel::open(&location, OpenMode::Existing).unwrap();
    let config = SchedulerConfig { store_outage: Duration::ZERO, ..config };
    let impatient = Scheduler::new(quantum::env(other, router, QuantumPolicy::default()), config);
    let err = impatient.run(std::future::pending()).await.unwrap_err();
    assert_eq!(
        (err.clone(), err.to_string()),
        (
            KernelError::Store(StoreError::Busy),
            "store is locked by another process (gave up after waiting 5 s); nothing was changed".to_string()
        )
    );

    let summary = patient.await.unwrap().unwrap();
    let done = ProcState::Exited { code: 0, result: "done".into() };
    assert_eq!((summary.quanta, summary.cancelled, summary.finished), (1, 1, vec![(pid, done)]));
    assert_eq!(*model.calls.lock().unwrap(), 2);
    let states: Vec<String> = kernel
        .audit(&AuditFilter { pid: Some(pid), ..AuditFilter::default() })
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == AuditKind::State)
        .map(|r| r.action.to_string())
        .collect();
    assert_eq!(states, ["lease", "release", "lease", "exit"]);
    assert_eq!(kernel.process(pid).unwrap().usage.model_calls, 1);
    assert!(kernel.audit_verify(None).unwrap().ok());
}

libos_kernel::tests!(async_multi_thread:
    a_store_busy_past_its_timeout_holds_a_scheduler_up_and_does_not_stop_it,
);
