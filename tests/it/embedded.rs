//! Many scripted agents in one in-memory kernel.

use std::sync::Arc;

use libos_images::ImageSet;
use libos_kernel::{Actor, AuditFilter, Kernel, Outcome, ProcState, ProcessFilter, SpawnSpec};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel};
use pretty_assertions::assert_eq;

const SCRIPT: &str = r#"
[[agent]]
image = "assistant"
goal_contains = "even"
[[agent.step]]
tool = "write_file"
args = { path = "even.txt", content = "even" }
[[agent.step]]
tool = "exit"
args = { result = "wrote even" }

[[agent]]
image = "assistant"
goal_contains = "odd"
[[agent.step]]
tool = "now"
[[agent.step]]
text = "{\"tool\": \"exit\", \"args\": {\"result\": \"odd done\"}}"
"#;

async fn a_hundred_agents_run_concurrently_and_the_record_is_complete() {
    let kernel = Kernel::in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let images = ImageSet::shipped().unwrap();
    let assistant = images.get("assistant").unwrap();
    let digest = kernel.register_image(&assistant.name, &assistant.version, &assistant.source).unwrap();
    for i in 0..100 {
        kernel
            .spawn_with_grants(
                &SpawnSpec {
                    image: digest.clone(),
                    goal: format!("agent {i}: {}", if i % 2 == 0 { "even" } else { "odd" }),
                    workspace: dir.path().to_path_buf(),
                    parent: None,
                    priority: 0,
                    actor: Actor::operator(),
                    budget: libos_kernel::budget::Budget::unlimited(),
                },
                &assistant.grants,
            )
            .unwrap();
    }
    let script = Script::parse("scenario", SCRIPT).unwrap();
    let router = ModelRouter::default().with_override(Arc::new(ScriptedModel::new("scripted", script)));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let sched = Scheduler::new(env, SchedulerConfig { concurrency: 16, until_idle: true, ..Default::default() });
    let summary = sched.run(std::future::pending()).await.unwrap();
    assert_eq!((summary.quanta, summary.finished.len(), summary.cancelled), (200, 100, 0));

    let mut results: Vec<String> = kernel
        .processes(ProcessFilter::All)
        .unwrap()
        .into_iter()
        .map(|p| match p.state {
            ProcState::Exited { result, .. } => result,
            other => format!("unexpected {other}"),
        })
        .collect();
    results.sort();
    results.dedup();
    assert_eq!(results, vec!["odd done", "wrote even"]);

    let report = kernel.audit_verify(None).unwrap();
    // Per process: spawn, then per quantum lease + tool + state; even agents add an intent record.
    assert_eq!((report.ok(), report.records), (true, 100 + 100 * 6 + 50));
    let pending = kernel.audit(&AuditFilter { outcome: Some(Outcome::Pending), ..Default::default() }).unwrap();
    assert_eq!(pending.len(), 50);
}

libos_kernel::tests!(async_multi_thread:
    a_hundred_agents_run_concurrently_and_the_record_is_complete,
);
