//! A scripted world for scenario tests: a file store in a temporary
//! workspace, shipped images, and a model that plays steps per goal (with
//! hooks that run between a quantum's prompt and its commit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use libos_images::ImageSet;
use libos_kernel::budget::Budget;
use libos_kernel::caps::GrantSpec;
use libos_kernel::testing::Backend;
use libos_kernel::{Actor, Kernel, OpenMode, Pid, ProcState, RequestId, SpawnSpec, StoreLocation};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{
    ChatModel, ChatRequest, ChatResponse, ModelError, ModelRouter, RawToolCall, Scheduler, SchedulerConfig,
};
use pretty_assertions::assert_eq;
use serde_json::Value;

pub type Hook = Box<dyn Fn() + Send + Sync>;

/// One scripted answer: a tool call, and something to do just before
/// answering (while the quantum is between its prompt and its commit).
pub struct Step {
    pub tool: &'static str,
    pub args: Value,
    pub before: Option<Hook>,
}

pub fn step(tool: &'static str, args: Value) -> Step {
    Step { tool, args, before: None }
}

/// Plays steps per process, chosen by goal, one per model call.
#[derive(Default)]
pub struct Steps {
    by_goal: Mutex<HashMap<String, Vec<Step>>>,
}

impl Steps {
    pub fn script(&self, goal: &str, steps: Vec<Step>) {
        self.by_goal.lock().unwrap().insert(goal.to_string(), steps);
    }
}

#[async_trait]
impl ChatModel for Steps {
    fn profile(&self) -> &str {
        "steps"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let map = self.by_goal.lock().unwrap();
        let steps = map.get(&request.meta.goal).ok_or_else(|| ModelError::Fatal("no script".into()))?;
        let s = steps
            .get(request.meta.call_index as usize)
            .ok_or_else(|| ModelError::Fatal(format!("script for `{}` ran out", request.meta.goal)))?;
        if let Some(hook) = &s.before {
            hook();
        }
        Ok(ChatResponse {
            model: "steps".into(),
            content: None,
            tool_calls: vec![RawToolCall {
                id: format!("c{}", request.meta.call_index),
                name: s.tool.into(),
                arguments: s.args.to_string(),
            }],
            usage: None,
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

pub struct World {
    pub kernel: Kernel,
    pub dir: tempfile::TempDir,
    pub images: ImageSet,
    pub model: Arc<Steps>,
    pub router: ModelRouter,
    /// Where the store is (another kernel on the same store opens this).
    pub location: StoreLocation,
    /// Declared last: the scratch schema is dropped after the kernel closes.
    backend: Backend,
}

/// A world on an SQLite file in its workspace.
pub fn world() -> World {
    world_on(Backend::Sqlite)
}

/// A world on `backend`: an SQLite file in the workspace, or a PostgreSQL schema.
pub fn world_on(backend: Backend) -> World {
    let dir = tempfile::tempdir().unwrap();
    let location = backend.location(&dir.path().join(".libos/libos.db"));
    let kernel = Kernel::open(&location, OpenMode::Create).unwrap();
    let model: Arc<Steps> = Arc::default();
    let router = ModelRouter::default().with_override(model.clone());
    World { kernel, dir, images: ImageSet::shipped().unwrap(), model, router, location, backend }
}

impl World {
    /// A root process from a shipped image, with its grants plus `extra`.
    pub fn spawn(&self, image: &str, goal: &str, extra: &[&str], steps: Vec<Step>) -> Pid {
        self.spawn_with_budget(image, goal, extra, steps, Budget::unlimited())
    }

    /// [`World::spawn`] under a budget.
    pub fn spawn_with_budget(&self, image: &str, goal: &str, extra: &[&str], steps: Vec<Step>, budget: Budget) -> Pid {
        let mut grants = self.images.get(image).unwrap().grants.clone();
        grants.extend(extra.iter().map(|g| GrantSpec::parse(g).unwrap()));
        self.spawn_granted(image, goal, grants, steps, budget)
    }

    /// A root process holding exactly `grants` (none of its image's own).
    pub fn spawn_bare(&self, image: &str, goal: &str, grants: &[&str], steps: Vec<Step>) -> Pid {
        let grants = grants.iter().map(|g| GrantSpec::parse(g).unwrap()).collect();
        self.spawn_granted(image, goal, grants, steps, Budget::unlimited())
    }

    fn spawn_granted(&self, image: &str, goal: &str, grants: Vec<GrantSpec>, steps: Vec<Step>, budget: Budget) -> Pid {
        let image = self.images.get(image).unwrap();
        let digest = self.kernel.register_image(&image.name, &image.version, &image.source).unwrap();
        self.model.script(goal, steps);
        let spec = SpawnSpec {
            image: digest,
            goal: goal.into(),
            workspace: self.dir.path().to_path_buf(),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget,
        };
        self.kernel.spawn_with_grants(&spec, &grants).unwrap()
    }

    /// Runs a scheduler until nothing is runnable (parked processes do not count).
    pub async fn run(&self) {
        let env = quantum::env(self.kernel.clone(), self.router.clone(), QuantumPolicy::default());
        // One quantum at a time: the records' order is the test's, not the
        // blocking pool's (quanta in flight together interleave their
        // store calls since those run off the async workers).
        let config = SchedulerConfig { until_idle: true, concurrency: 1, ..SchedulerConfig::default() };
        Scheduler::new(env, config).run(std::future::pending()).await.unwrap();
    }

    /// Runs SQL on the store behind libos's back (to tamper with it).
    pub fn tamper(&self, sql: &str) {
        self.backend.tamper(&self.dir.path().join(".libos/libos.db"), sql).unwrap();
    }

    pub fn state(&self, pid: Pid) -> ProcState {
        self.kernel.process(pid).unwrap().state
    }

    pub fn model_calls(&self, pid: Pid) -> u64 {
        self.kernel.process(pid).unwrap().usage.model_calls
    }

    /// The transcript as `tool outcome: result` lines.
    pub fn transcript(&self, pid: Pid) -> Vec<String> {
        let (entries, _) = self.kernel.transcript(pid, None).unwrap();
        entries.iter().map(|e| format!("{} {}: {}", e.call.tool, e.result.outcome.as_str(), e.result.content)).collect()
    }

    pub fn only_request(&self) -> RequestId {
        let pending = self.kernel.pending().unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        pending[0].id
    }

    pub fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join(name)).ok()
    }
}
