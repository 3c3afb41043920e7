//! Issue 16: one valid call per quantum by construction. Call modes on the
//! wire, profile settings, finish reasons, context overflows and bounded
//! failures, against a mock OpenAI-compatible server (llama.cpp's when it
//! answers `GET /props`).

use std::sync::Arc;
use std::time::Duration;

use libos_images::ImageSet;
use libos_kernel::{Actor, FailureKind, Kernel, ModelCallOutcome, Pid, ProcState, SpawnSpec};
use libos_runtime::model::retry::RetryPolicy;
use libos_runtime::model::settings::{CallMode, Sampling};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ChatModel, HttpConfig, HttpModel, ModelRouter, RunSummary, Scheduler, SchedulerConfig};
use libos_tests::{MockServer, Reply};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

pub(crate) struct World {
    pub(crate) kernel: Kernel,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) pid: Pid,
}

/// A kernel with one `assistant` process.
pub(crate) fn world(goal: &str) -> World {
    let kernel = Kernel::in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let images = ImageSet::shipped().unwrap();
    let image = images.get("assistant").unwrap();
    let digest = kernel.register_image(&image.name, &image.version, &image.source).unwrap();
    let spec = SpawnSpec {
        image: digest,
        goal: goal.into(),
        workspace: dir.path().to_path_buf(),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    };
    let pid = kernel.spawn_with_grants(&spec, &image.grants).unwrap();
    World { kernel, _dir: dir, pid }
}

pub(crate) fn profile(server: &MockServer, mode: Option<CallMode>) -> HttpConfig {
    HttpConfig {
        retry: RetryPolicy { max_retries: 0, base: Duration::from_millis(1), max_delay: Duration::from_millis(5) },
        call_mode: mode,
        ..HttpConfig::new("default", &server.base_url(), "mock-1")
    }
}

impl World {
    pub(crate) async fn run(&self, config: HttpConfig) -> RunSummary {
        let model: Arc<dyn ChatModel> = Arc::new(HttpModel::new(config).unwrap());
        let env = quantum::env(
            self.kernel.clone(),
            ModelRouter::default().with_override(model),
            QuantumPolicy { max_repairs: 2, backoff: Duration::ZERO },
        );
        let config = SchedulerConfig { until_idle: true, poll: Duration::from_millis(5), ..Default::default() };
        Scheduler::new(env, config).run(std::future::pending()).await.unwrap()
    }

    pub(crate) fn state(&self) -> ProcState {
        self.kernel.process(self.pid).unwrap().state
    }

    /// (call_mode, finish_reason, outcome) of every model call.
    fn calls(&self) -> Vec<(Option<String>, Option<String>, &'static str)> {
        let calls = self.kernel.model_calls(self.pid).unwrap();
        calls
            .into_iter()
            .map(|c| (c.record.detail.call_mode, c.record.detail.finish_reason, c.record.outcome.as_str()))
            .collect()
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

pub(crate) fn exited(result: &str) -> ProcState {
    ProcState::Exited { code: 0, result: result.into() }
}

/// A text answer with a finish reason.
fn answer(content: &str, finish: &str) -> Reply {
    Reply::ok(json!({
        "model": "mock-1",
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20},
    }))
}

/// The `anyOf` branches' (tool const, required args) of a schema-mode body.
fn union(body: &Value) -> Vec<(String, Value)> {
    body["response_format"]["json_schema"]["schema"]["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["properties"]["tool"]["const"].as_str().unwrap().to_string(),
                b["properties"]["args"]["required"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_llama_cpp_server_gets_schema_mode_with_one_branch_per_tool() {
    let server = MockServer::start(vec![answer(r#"{"tool": "exit", "args": {"result": "done"}}"#, "stop")]).await;
    server.llama_props(4096);
    let w = world("finish");
    w.run(profile(&server, None)).await;
    assert_eq!((w.state(), w.calls()), (exited("done"), vec![(some("schema"), some("stop"), "ok")]));
    let body = &server.requests()[0].body;
    assert_eq!(body.get("tools"), None);
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["response_format"]["type"], "json_schema");
    let branches = union(body);
    let names: Vec<&str> = branches.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "read_file",
            "list_dir",
            "write_file",
            "delete_file",
            "now",
            "ask_human",
            "memory_write",
            "memory_read",
            "memory_list",
            "memory_search",
            "memory_pin",
            "memory_unpin",
            "exit"
        ]
    );
    assert_eq!(branches[2].1, json!(["path", "content"]));
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("\n- write_file(path: string, content: string): "), "{system}");
    assert!(system.contains(r#"{"tool": NAME, "args": {ARGUMENTS}}"#), "{system}");
}

#[tokio::test]
async fn native_mode_requires_one_call_and_sends_the_profile_settings_with_extra_body_last() {
    let server = MockServer::start(vec![Reply::tool_call("exit", json!({"result": "done"}))]).await;
    let w = world("finish");
    let mut extra = serde_json::Map::new();
    extra.insert("top_k".into(), json!(40));
    extra.insert("max_tokens".into(), json!(77));
    let config = HttpConfig {
        sampling: Sampling {
            max_tokens: 300,
            temperature: Some(0.0),
            top_p: Some(0.5),
            seed: Some(7),
            stop: vec!["<|end|>".into()],
            extra_body: extra,
        },
        ..profile(&server, None)
    };
    w.run(config).await;
    assert_eq!(w.state(), exited("done"));
    let body = &server.requests()[0].body;
    let fields: Vec<Value> =
        ["tool_choice", "parallel_tool_calls", "max_tokens", "temperature", "top_p", "seed", "stop", "top_k"]
            .iter()
            .map(|k| body[*k].clone())
            .collect();
    assert_eq!(
        fields,
        [json!("required"), json!(false), json!(77), json!(0.0), json!(0.5), json!(7), json!(["<|end|>"]), json!(40)]
    );
    assert_eq!(body["tools"].as_array().unwrap().len(), 13);
    // What was sent is on the record.
    let calls = w.kernel.model_calls(w.pid).unwrap();
    let sent: Value = serde_json::from_str(calls[0].record.detail.sent.as_deref().unwrap()).unwrap();
    assert_eq!(
        (sent["call_mode"].clone(), sent["max_tokens"].clone(), sent["top_k"].clone()),
        (json!("native"), json!(77), json!(40))
    );
}

#[tokio::test]
async fn a_server_refusing_tool_choice_required_is_sent_auto() {
    let server = MockServer::start(vec![
        Reply::status(400, r#"{"error": {"message": "tool_choice 'required' is not supported"}}"#),
        Reply::tool_call("exit", json!({"result": "done"})),
    ])
    .await;
    let w = world("finish");
    w.run(profile(&server, Some(CallMode::Native))).await;
    let choices: Vec<Value> = server.requests().iter().map(|r| r.body["tool_choice"].clone()).collect();
    assert_eq!((w.state(), choices), (exited("done"), vec![json!("required"), json!("auto")]));
    assert_eq!(w.calls()[0].2, "error", "the refused attempt is in the transcript");
}

#[tokio::test]
async fn text_mode_shows_calls_as_text_and_results_as_user_turns() {
    let server = MockServer::start(vec![
        answer(r#"I'll check the time. {"tool": "now", "args": {}}"#, "stop"),
        answer(r#"{"name": "exit", "arguments": {"result": "done"}}"#, "stop"),
    ])
    .await;
    let w = world("tell the time");
    w.run(profile(&server, Some(CallMode::Text))).await;
    assert_eq!(w.state(), exited("done"));
    let body = &server.requests()[1].body;
    assert_eq!((body.get("tools"), body.get("response_format")), (None, None));
    let roles: Vec<&str> = body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(
        body["messages"][2]["content"],
        r#"I'll check the time.
{"tool": "now", "args": {}}"#
    );
    assert!(body["messages"][3]["content"].as_str().unwrap().starts_with("Result of now:\n"));
}

/// Issue 16: the repair after an empty answer sent `content: null` for the
/// assistant turn, which OpenAI refuses without `tool_calls`.
#[tokio::test]
async fn the_repair_after_an_empty_answer_sends_an_empty_string() {
    let server = MockServer::start(vec![Reply::text(""), Reply::tool_call("exit", json!({"result": "done"}))]).await;
    let w = world("finish");
    w.run(profile(&server, Some(CallMode::Native))).await;
    assert_eq!(w.state(), exited("done"));
    let messages = server.requests()[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(messages[2], json!({"role": "assistant", "content": ""}));
}

#[tokio::test]
async fn an_answer_cut_off_by_length_is_shown_as_cut_off() {
    let server = MockServer::start(vec![
        answer(r#"{"tool": "write_file", "args": {"path": "a.txt", "content": "aaaa"#, "length"),
        answer(r#"{"tool": "exit", "args": {"result": "done"}}"#, "stop"),
    ])
    .await;
    let w = world("finish");
    w.run(HttpConfig {
        sampling: Sampling { max_tokens: 16, ..Sampling::default() },
        ..profile(&server, Some(CallMode::Schema))
    })
    .await;
    assert_eq!(
        (w.state(), w.calls()),
        (exited("done"), vec![(some("schema"), some("length"), "rejected"), (some("schema"), some("stop"), "ok")])
    );
    let repair = server.requests()[1].body["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    assert!(
        repair
            .as_str()
            .unwrap()
            .starts_with("error: the answer was cut off at max_tokens (16) before it was complete; "),
        "{repair}"
    );
}

#[tokio::test]
async fn a_context_overflow_makes_the_next_attempt_a_smaller_prompt() {
    let overflow = r#"{"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 2619, "n_ctx": 2048}}"#;
    let server = MockServer::start(vec![
        Reply::status(400, overflow),
        answer(r#"{"tool": "exit", "args": {"result": "done"}}"#, "stop"),
    ])
    .await;
    let w = world(&"a long goal ".repeat(2000));
    w.run(profile(&server, Some(CallMode::Schema))).await;
    assert_eq!(
        (w.state(), w.calls()),
        (exited("done"), vec![(some("schema"), None, "error"), (some("schema"), some("stop"), "ok")])
    );
    let sizes: Vec<usize> = server.requests().iter().map(|r| r.body["messages"].to_string().len()).collect();
    assert!(sizes[1] < sizes[0], "{sizes:?}");
    // The quantum counted once, and the shrink is no charged model call.
    assert_eq!(w.kernel.process(w.pid).unwrap().usage.model_calls, 1);
}

#[tokio::test]
async fn the_prompt_fits_the_context_window_less_the_answer() {
    let server = MockServer::start(vec![answer(r#"{"tool": "exit", "args": {"result": "done"}}"#, "stop")]).await;
    let w = world(&"a long goal ".repeat(2000));
    let config = HttpConfig { context_window: Some(2048), ..profile(&server, Some(CallMode::Schema)) };
    w.run(config).await;
    assert_eq!(w.state(), exited("done"));
    // (2048 - 1024 - margin) tokens of ~4 bytes: the goal was cut to fit.
    let bytes = server.requests()[0].body["messages"].to_string().len();
    assert!(bytes < 4 * 1024, "{bytes} bytes");
}

/// Issue 16: a deterministic HTTP 500 was retried forever, and `run
/// --until-idle` never returned.
#[tokio::test]
async fn the_same_model_error_in_five_quanta_in_a_row_fails_the_process() {
    let server = MockServer::start(vec![]).await;
    server.always(Reply::status(500, r#"{"error": {"message": "failed to parse grammar"}}"#));
    let w = world("finish");
    let config = HttpConfig {
        retry: RetryPolicy { max_retries: 3, base: Duration::from_millis(1), max_delay: Duration::from_millis(5) },
        ..profile(&server, Some(CallMode::Native))
    };
    w.run(config).await;
    let error = "model unavailable: endpoint returned 500 Internal Server Error: failed to parse grammar";
    assert_eq!(
        w.state(),
        ProcState::Failed {
            kind: FailureKind::ModelError,
            error: format!("5 quanta in a row failed on the same model error; last: {error} (attempts: 2)"),
        }
    );
    // Each quantum stopped retrying at the second identical answer.
    assert_eq!(server.requests().len(), 10);
    let outcomes: Vec<ModelCallOutcome> =
        w.kernel.model_calls(w.pid).unwrap().iter().map(|c| c.record.outcome).collect();
    assert_eq!(outcomes, vec![ModelCallOutcome::Error; 10]);
}

#[tokio::test]
async fn until_idle_returns_when_only_backing_off_processes_remain() {
    let server = MockServer::start(vec![]).await;
    server.always(Reply::status(503, r#"{"error": {"message": "loading model"}}"#));
    let w = world("finish");
    let model: Arc<dyn ChatModel> = Arc::new(HttpModel::new(profile(&server, Some(CallMode::Native))).unwrap());
    let env = quantum::env(
        w.kernel.clone(),
        ModelRouter::default().with_override(model),
        QuantumPolicy { max_repairs: 2, backoff: Duration::from_secs(3600) },
    );
    let config = SchedulerConfig { until_idle: true, poll: Duration::from_millis(5), ..Default::default() };
    let summary = Scheduler::new(env, config).run(std::future::pending()).await.unwrap();
    assert_eq!((summary.quanta, summary.backing_off), (1, true));
    assert!(matches!(w.state(), ProcState::Runnable { not_before: Some(_) }), "{:?}", w.state());
}

/// A dynamic tool's schema may use keywords a server's grammar converter
/// does not take: in the union its arguments are only "an object" (and
/// are validated in full after the answer), the other tools keep theirs.
#[test]
fn a_schema_with_keywords_grammars_lack_is_loosened_in_the_union() {
    let tagger = libos_tools::ToolSpec {
        name: libos_tools::ToolName::new("tag").unwrap(),
        description: "Tag things.".into(),
        parameters: json!({"type": "object", "patternProperties": {"^t": {"type": "string"}}}),
    };
    let exit = libos_tools::Registry::builtin().table(&[libos_tools::ToolName::builtin("exit")]).unwrap().specs();
    let table = libos_runtime::ToolTable::new(exit.into_iter().chain([tagger]).collect());
    assert_eq!(table.loosened(), [("tag".to_string(), "patternProperties".to_string())]);
    let format: Value = serde_json::from_slice(table.response_format()).unwrap();
    let args: Vec<Value> = format["json_schema"]["schema"]["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["properties"]["args"]["required"].clone())
        .collect();
    assert_eq!(args, [json!(["result"]), Value::Null]);
    assert_eq!(format["json_schema"]["schema"]["anyOf"][1]["properties"]["args"], json!({"type": "object"}));
}
