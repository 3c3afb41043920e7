//! No tokio worker blocks on the store: a quantum waiting for SQLite's
//! write lock leaves the runtime free for every other task.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use libos_images::ImageSet;
use libos_kernel::{Actor, Kernel, OpenMode, ProcState, SchedulerId, SpawnSpec, StoreLocation};
use libos_runtime::model::ReportedUsage;
use libos_runtime::quantum::{self, QuantumOutcome, QuantumPolicy};
use libos_runtime::{ChatModel, ChatRequest, ChatResponse, ModelError, ModelRouter, RawToolCall};
use pretty_assertions::assert_eq;
use tokio::sync::Notify;

/// Answers `now` at once and says it has answered.
struct Answering {
    answered: Arc<Notify>,
}

#[async_trait]
impl ChatModel for Answering {
    fn profile(&self) -> &str {
        "answering"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.answered.notify_one();
        Ok(ChatResponse {
            model: "answering".into(),
            content: None,
            tool_calls: vec![RawToolCall {
                id: format!("call_{}", request.meta.call_index),
                name: "now".into(),
                arguments: "{}".into(),
            }],
            usage: Some(ReportedUsage { input: 10, output: 1, ..Default::default() }),
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

/// Issue 18: quanta called the store straight from their tokio task, so a
/// commit waiting for SQLite's write lock (held here by another
/// connection, as a CLI command in another shell would) stopped the whole
/// worker. On a runtime with a single thread, another task now runs to
/// its end while the quantum's commit is still waiting; the commit lands
/// once the lock is released.
#[test]
fn a_quantum_waiting_for_the_write_lock_leaves_the_runtime_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.db");
    let kernel = Kernel::open(&StoreLocation::File(path.clone()), OpenMode::Create).unwrap();
    let images = ImageSet::shipped().unwrap();
    let image = images.get("assistant").unwrap();
    let digest = kernel.register_image(&image.name, &image.version, &image.source).unwrap();
    let pid = kernel
        .spawn(&SpawnSpec {
            image: digest,
            goal: "tell the time".into(),
            workspace: dir.path().to_path_buf(),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget: libos_kernel::budget::Budget::unlimited(),
        })
        .unwrap();
    let lease = kernel.lease(&SchedulerId("test".into()), Duration::from_secs(60), 1, &[]).unwrap().pop().unwrap();
    let answered = Arc::new(Notify::new());
    let router = ModelRouter::default().with_override(Arc::new(Answering { answered: answered.clone() }));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());

    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let outcome = rt.block_on(async {
        let quantum = tokio::spawn(quantum::run(env, lease));
        // The model has answered: from here the quantum only commits,
        // which cannot finish while the lock is held.
        answered.notified().await;
        let other = tokio::spawn(async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            "ticked"
        });
        assert_eq!(other.await.unwrap(), "ticked");
        assert!(!quantum.is_finished(), "the quantum finished (committed or gave up) while the write lock was held");
        holder.execute_batch("COMMIT").unwrap();
        quantum.await.unwrap().unwrap()
    });
    assert_eq!(outcome, QuantumOutcome::Committed(ProcState::Runnable { not_before: None }));
    assert_eq!(kernel.transcript(pid, None).unwrap().1, 1);
}
