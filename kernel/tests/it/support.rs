//! Helpers shared by the kernel tests.

use std::path::PathBuf;
use std::time::Duration;

use libos_kernel::testing::Backend;
use libos_kernel::{
    Action, Actor, Kernel, Lease, ModelCallOutcome, ModelCallRecord, Next, OpenMode, Outcome, Pid, QuantumCommit,
    SchedulerId, SpawnSpec, StoreLocation, TokenUsage, ToolCallRecord, ToolResultRecord,
};

pub const SPEC: &str = "name = \"t\"\nversion = \"1\"\nsystem_prompt = \"x\"\ntools = [\"exit\"]\n";

/// A kernel on `backend`: the scratch schema (if any) lives as long as the store.
pub struct Store {
    pub kernel: Kernel,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
}

impl Store {
    /// Runs SQL on the store behind libos's back (to tamper with it).
    pub fn tamper(&self, sql: &str) {
        self.backend.tamper(&self.dir.path().join("libos.db"), sql).unwrap();
    }
}

pub fn kernel_on(backend: Backend) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(&backend.location(&dir.path().join("libos.db")), OpenMode::Create).unwrap();
    Store { kernel, backend, dir }
}

/// A kernel on `backend` whose time moves only when the returned clock is
/// advanced: timing rules are tested without sleeping.
pub fn kernel_on_clock(backend: Backend) -> (Store, std::sync::Arc<libos_kernel::ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(libos_kernel::ManualClock::new(libos_kernel::clock::system_now()));
    let location = backend.location(&dir.path().join("libos.db"));
    let kernel = Kernel::open_with_clock(&location, OpenMode::Create, clock.clone()).unwrap();
    (Store { kernel, backend, dir }, clock)
}

pub fn file_kernel() -> (tempfile::TempDir, Kernel, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.db");
    let kernel = Kernel::open(&StoreLocation::File(path.clone()), OpenMode::Create).unwrap();
    (dir, kernel, path)
}

pub fn spawn(kernel: &Kernel, goal: &str) -> Pid {
    let image = kernel.register_image("t", "1", SPEC).unwrap();
    kernel
        .spawn(&SpawnSpec {
            image,
            goal: goal.to_string(),
            workspace: PathBuf::from("/tmp"),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget: libos_kernel::budget::Budget::unlimited(),
        })
        .unwrap()
}

pub fn owner() -> SchedulerId {
    SchedulerId("test-scheduler".to_string())
}

pub fn lease_one(kernel: &Kernel) -> Lease {
    let mut leases = kernel.lease(&owner(), Duration::from_secs(60), 1, &[]).unwrap();
    assert_eq!(leases.len(), 1, "expected one runnable process to lease");
    leases.remove(0)
}

pub fn model_call() -> ModelCallRecord {
    ModelCallRecord {
        cost_micros: 0,
        attempt: 0,
        profile: "test".to_string(),
        model: "m".to_string(),
        request_digest: "d".to_string(),
        request_bytes: 10,
        response: "{}".to_string(),
        rationale: None,
        usage: TokenUsage { input: 10, output: 5, estimated: false },
        latency: Duration::from_millis(1),
        outcome: ModelCallOutcome::Ok,
        error: None,
        detail: Default::default(),
    }
}

pub fn commit(tool: &str, args: &str, next: Next) -> QuantumCommit {
    QuantumCommit {
        model_call: Some(model_call()),
        call: ToolCallRecord {
            call_id: "c1".to_string(),
            tool: tool.to_string(),
            args: args.to_string(),
            rationale: Some("because".to_string()),
            carry: None,
        },
        checks: Vec::new(),
        action: Action::Done { result: ToolResultRecord { outcome: Outcome::Ok, content: "fine".to_string() }, next },
        seen: Vec::new(),
    }
}
