//! Issue 19: an image that asks for recall (`[context] recall = N`) sees,
//! every quantum, the best matches of its goal and last result among the
//! objects it may read, within its share of the budget; one that does not
//! sees none.

use std::sync::Arc;

use libos_images::ImageSet;
use libos_kernel::{Actor, Kernel, SpawnSpec};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ChatModel, HttpModel, ModelRouter, Scheduler, SchedulerConfig};
use libos_tests::{MockServer, Reply};
use serde_json::json;

/// Runs an assistant (its `[context]` table replaced by `context`) that
/// writes two objects and exits; returns the user message of each request.
async fn user_messages(context: &str) -> Vec<String> {
    let server = MockServer::start(vec![
        Reply::tool_call("memory_write", json!({"name": "release", "content": "ship the release on friday"})),
        Reply::tool_call("memory_write", json!({"name": "lunch", "content": "pasta"})),
        Reply::tool_call("exit", json!({"result": "planned"})),
    ])
    .await;
    let kernel = Kernel::in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shipped = ImageSet::shipped().unwrap();
    let image = shipped.get("assistant").unwrap();
    let (head, tail) = image.source.split_once("[context]").unwrap();
    let rest = tail.split_once("\n[").map_or(String::new(), |(_, r)| format!("\n[{r}"));
    let source = format!("{head}[context]\n{context}\n{rest}");
    let digest = kernel.register_image(&image.name, "1.0.0-recall", &source).unwrap();
    let spec = SpawnSpec {
        image: digest,
        goal: "plan the release".into(),
        workspace: dir.path().to_path_buf(),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    };
    kernel.spawn_with_grants(&spec, &image.grants).unwrap();
    let config = libos_runtime::HttpConfig::new("default", &server.base_url(), "mock-1");
    let model: Arc<dyn ChatModel> = Arc::new(HttpModel::new(config).unwrap());
    let env = quantum::env(kernel.clone(), ModelRouter::default().with_override(model), QuantumPolicy::default());
    let config = SchedulerConfig { until_idle: true, ..Default::default() };
    Scheduler::new(env, config).run(std::future::pending()).await.unwrap();
    server.requests().iter().map(|r| r.body["messages"][1]["content"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_image_that_recalls_sees_the_best_matches_of_its_goal_and_last_result() {
    let users = user_messages("recall = 2").await;
    assert_eq!(users.len(), 3);
    assert!(!users[0].contains("Recalled memory"), "nothing to recall yet: {}", users[0]);
    // After the first write: the release notes match the goal.
    let second = &users[1];
    let at = second.find("Recalled memory (objects matching your goal and last result):").expect(second);
    assert!(second[at..].contains("[memory 1 `pid:1/release` (text, v1, score "), "{second}");
    assert!(second[at..].contains("ship the release on friday"), "{second}");
    // After the second: both match (the goal, and the last result naming
    // `lunch`), the release first.
    let third = &users[2];
    let (release, lunch) = (third.find("`pid:1/release`").expect(third), third.find("`pid:1/lunch`").expect(third));
    assert!(release < lunch, "{third}");
}

#[tokio::test]
async fn an_image_that_does_not_recall_sees_no_recalled_memory() {
    let users = user_messages("").await;
    assert_eq!(users.len(), 3);
    assert!(users.iter().all(|u| !u.contains("Recalled memory")), "{users:?}");
}
