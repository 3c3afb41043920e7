//! Two schedulers on one store: no process runs in both at once, none is
//! lost, every quantum is counted once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use libos_images::ImageSet;
use libos_kernel::budget::Budget;
use libos_kernel::testing::Backend;
use libos_kernel::{Actor, Kernel, OpenMode, Pid, ProcState, ProcessFilter, SpawnSpec};
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
