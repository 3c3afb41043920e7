//! Issue 16: the Anthropic Messages and OpenAI Responses protocols on the
//! wire (exact request shapes, answers read, reasoning carried between
//! turns), fallback routes and repair profiles, against mock servers.
//! The same protocols against llama.cpp's real server are in the
//! workspace's `real_model` tests.

use std::sync::Arc;
use std::time::Duration;

use libos_kernel::ModelCallOutcome;
use libos_runtime::model::http::ApiKey;
use libos_runtime::model::settings::{CallMode, Protocol};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ChatModel, Config, HttpConfig, HttpModel, ModelRouter, Scheduler, SchedulerConfig};
use libos_tests::{MockServer, Reply};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::calls::{World, exited, profile, world};

fn kind(server: &MockServer, protocol: Protocol, mode: Option<CallMode>) -> HttpConfig {
    HttpConfig { protocol, api_key: ApiKey::Value("sk-test".into()), ..profile(server, mode) }
}

/// A Messages API answer of these content blocks.
fn message(content: Value, stop: &str) -> Reply {
    Reply::ok(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-mock",
        "content": content, "stop_reason": stop,
        "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 5},
    }))
}

/// A Responses API answer of these output items.
fn response(output: Value) -> Reply {
    Reply::ok(json!({
        "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-mock", "output": output,
        "usage": {"input_tokens": 120, "output_tokens": 9, "input_tokens_details": {"cached_tokens": 64}},
    }))
}

fn header<'a>(r: &'a libos_tests::Request, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl World {
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self._dir.path().join(name)).unwrap_or_default()
    }

    /// (profile, outcome, error) of every model call.
    fn rows(&self) -> Vec<(String, &'static str, Option<String>)> {
        let calls = self.kernel.model_calls(self.pid).unwrap();
        calls.into_iter().map(|c| (c.record.profile, c.record.outcome.as_str(), c.record.error)).collect()
    }
}

#[tokio::test]
async fn the_messages_api_gets_tool_use_blocks_and_one_forced_tool() {
    let server = MockServer::start(vec![
        message(
            json!([{"type": "text", "text": "Writing it."},
                   {"type": "tool_use", "id": "toolu_1", "name": "write_file", "input": {"path": "a.txt", "content": "hi"}}]),
            "tool_use",
        ),
        message(json!([{"type": "tool_use", "id": "toolu_2", "name": "exit", "input": {"result": "wrote"}}]), "tool_use"),
    ])
    .await;
    let w = world("write hi to a.txt");
    w.run(kind(&server, Protocol::Messages, Some(CallMode::Native))).await;
    assert_eq!((w.state(), w.file("a.txt")), (exited("wrote"), "hi".to_string()));
    let requests = server.requests();
    let second = &requests[1];
    assert_eq!(
        (second.line.as_str(), header(second, "x-api-key"), header(second, "anthropic-version")),
        ("POST /v1/messages HTTP/1.1", Some("sk-test"), Some("2023-06-01"))
    );
    let body = &second.body;
    assert!(body["system"].as_str().unwrap().starts_with("You are an agent running as a process under libos"));
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(
        body["messages"].as_array().unwrap()[1..],
        [
            json!({"role": "assistant", "content": [
                {"type": "text", "text": "Writing it."},
                {"type": "tool_use", "id": "toolu_1", "name": "write_file", "input": {"content": "hi", "path": "a.txt"}},
            ]}),
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "wrote 2 bytes to `a.txt`"},
            ]}),
        ]
    );
    assert_eq!(
        (
            &body["tool_choice"],
            &body["max_tokens"],
            &body["tools"][0]["name"],
            body["tools"][0]["input_schema"]["type"].as_str()
        ),
        (&json!({"type": "any", "disable_parallel_tool_use": true}), &json!(1024), &json!("read_file"), Some("object"))
    );
    let calls = w.kernel.model_calls(w.pid).unwrap();
    let first = &calls[0].record;
    assert_eq!(
        (first.usage.input, first.usage.output, first.detail.usage.as_deref(), first.detail.finish_reason.as_deref()),
        (105, 7, Some(r#"{"cache_read":90,"cache_write":5}"#), Some("tool_use"))
    );
    assert_eq!(first.rationale.as_deref(), Some("Writing it."));
}

#[tokio::test]
async fn the_messages_api_in_text_mode_prefills_the_call_and_reads_its_continuation() {
    let server = MockServer::start(vec![
        // A continuation of the prefill, as Anthropic's endpoints answer...
        message(
            json!([{"type": "text", "text": "write_file\", \"args\": {\"path\": \"b.txt\", \"content\": \"yo\"}}"}]),
            "end_turn",
        ),
        // ...and a whole object, as llama.cpp's does.
        message(
            json!([{"type": "text", "text": "{\"tool\": \"exit\", \"args\": {\"result\": \"done\"}}"}]),
            "end_turn",
        ),
    ])
    .await;
    // llama.cpp's server: the Messages API there gets `text` mode.
    server.llama_props(4096);
    let w = world("write yo to b.txt");
    w.run(kind(&server, Protocol::Messages, None)).await;
    assert_eq!((w.state(), w.file("b.txt")), (exited("done"), "yo".to_string()));
    let body = &server.requests()[1].body;
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(
        (body.get("tools"), body.get("tool_choice"), messages.last().unwrap()),
        (None, None, &json!({"role": "assistant", "content": [{"type": "text", "text": "{\"tool\": \""}]}))
    );
    // The call shown back is the whole object the prefill began.
    assert_eq!(
        messages[messages.len() - 3]["content"][0]["text"],
        r#"{"tool": "write_file", "args": {"content":"yo","path":"b.txt"}}"#
    );
    let calls = w.kernel.model_calls(w.pid).unwrap();
    assert_eq!(
        (calls[0].record.detail.call_mode.as_deref(), calls[0].record.response.as_str()),
        (
            Some("text"),
            r#"[{"text":"{\"tool\": \"write_file\", \"args\": {\"path\": \"b.txt\", \"content\": \"yo\"}}","type":"text"}]"#
        )
    );
}

#[tokio::test]
async fn the_responses_api_gets_function_items_and_carries_reasoning_between_turns() {
    let reasoning = json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque-state"});
    let server = MockServer::start(vec![
        response(json!([reasoning,
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "write_file",
             "arguments": "{\"path\": \"c.txt\", \"content\": \"ok\"}"}])),
        response(json!([{"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "exit",
                          "arguments": "{\"result\": \"fine\"}"}])),
    ])
    .await;
    let w = world("write ok to c.txt");
    w.run(kind(&server, Protocol::Responses, Some(CallMode::Native))).await;
    assert_eq!((w.state(), w.file("c.txt")), (exited("fine"), "ok".to_string()));
    let second = &server.requests()[1];
    let body = &second.body;
    assert_eq!(
        (second.line.as_str(), header(second, "authorization")),
        ("POST /v1/responses HTTP/1.1", Some("Bearer sk-test"))
    );
    assert!(body["instructions"].as_str().unwrap().starts_with("You are an agent running as a process under libos"));
    assert_eq!(body["input"][0]["type"], "message");
    assert_eq!(
        body["input"].as_array().unwrap()[1..],
        [
            reasoning,
            json!({"type": "function_call", "call_id": "call_1", "name": "write_file",
                   "arguments": "{\"content\":\"ok\",\"path\":\"c.txt\"}"}),
            json!({"type": "function_call_output", "call_id": "call_1", "output": "wrote 2 bytes to `c.txt`"}),
        ]
    );
    assert_eq!(
        (&body["tool_choice"], &body["parallel_tool_calls"], &body["max_output_tokens"], body.get("messages")),
        (&json!("required"), &json!(false), &json!(1024), None)
    );
    assert_eq!((&body["tools"][0]["type"], &body["tools"][0]["name"]), (&json!("function"), &json!("read_file")));
    let calls = w.kernel.model_calls(w.pid).unwrap();
    assert_eq!(
        (calls[0].record.usage.input, calls[0].record.detail.usage.as_deref()),
        (120, Some(r#"{"cache_read":64,"cache_write":0}"#))
    );
}

#[tokio::test]
async fn schema_mode_on_the_responses_api_sends_text_format_or_llama_cpp_s_response_format() {
    let exit = || {
        response(json!([{"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": "{\"tool\": \"exit\", \"args\": {\"result\": \"r\"}}"}]}]))
    };
    let mut shapes = Vec::new();
    for llama in [false, true] {
        let server = MockServer::start(vec![exit()]).await;
        if llama {
            server.llama_props(4096);
        }
        let w = world("finish");
        w.run(kind(&server, Protocol::Responses, Some(CallMode::Schema))).await;
        let body = &server.requests()[0].body;
        let branches = |schema: &Value| schema["anyOf"].as_array().map_or(0, Vec::len);
        shapes.push((
            w.state(),
            body.get("tools").is_some(),
            body["text"]["format"]["type"].as_str().map(str::to_string),
            branches(&body["text"]["format"]["schema"]),
            branches(&body["response_format"]["json_schema"]["schema"]),
        ));
    }
    assert_eq!(
        shapes,
        vec![(exited("r"), false, Some("json_schema".into()), 13, 0), (exited("r"), false, None, 0, 13)]
    );
}

#[tokio::test]
async fn a_cut_off_responses_answer_is_shown_to_the_model_as_cut_off() {
    let server = MockServer::start(vec![
        Reply::ok(json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "{\"tool\": \"wri"}]}]})),
        response(json!([{"type": "function_call", "call_id": "c", "name": "exit", "arguments": "{\"result\": \"x\"}"}])),
    ])
    .await;
    let w = world("finish");
    w.run(kind(&server, Protocol::Responses, Some(CallMode::Native))).await;
    let calls = w.kernel.model_calls(w.pid).unwrap();
    let first = &calls[0].record;
    assert_eq!(
        (w.state(), first.outcome, first.detail.finish_reason.as_deref()),
        (exited("x"), ModelCallOutcome::Rejected, Some("max_output_tokens"))
    );
    assert!(first.error.as_deref().unwrap().starts_with("the answer was cut off at max_tokens (1024)"), "{first:?}");
}

/// A configuration of these profiles, routed.
fn router(text: &str) -> ModelRouter {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.toml");
    std::fs::write(&path, text).unwrap();
    ModelRouter::from_config(&Config::load(Some(&path), &|_: &str| None).unwrap())
}

async fn run_routed(w: &World, models: ModelRouter) {
    let env = quantum::env(w.kernel.clone(), models, QuantumPolicy { max_repairs: 2, backoff: Duration::ZERO });
    let config = SchedulerConfig { until_idle: true, poll: Duration::from_millis(5), ..Default::default() };
    Scheduler::new(env, config).run(std::future::pending()).await.unwrap();
}

#[tokio::test]
async fn a_route_hands_the_call_to_its_fallback_while_the_endpoint_is_down() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let backup = MockServer::start(vec![
        message(json!([{"type": "tool_use", "id": "t1", "name": "now", "input": {}}]), "tool_use"),
        message(
            json!([{"type": "tool_use", "id": "t2", "name": "exit", "input": {"result": "via backup"}}]),
            "tool_use",
        ),
    ])
    .await;
    let models = router(&format!(
        "[models.default]\nbase_url = \"{dead_url}\"\nmodel = \"m\"\nmax_retries = 1\ncall_mode = \"native\"\n\
         context_window = 8192\nfallback = [\"backup\"]\n\
         [models.backup]\nkind = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"c\"\ncall_mode = \"native\"\n\
         context_window = 8192\n",
        backup.base_url()
    ));
    let w = world("what time is it");
    run_routed(&w, models).await;
    let rows = w.rows();
    let refused = rows[0].2.clone().unwrap();
    assert!(refused.starts_with("retried: cannot connect"), "{rows:?}");
    assert_eq!(
        (w.state(), rows),
        (
            exited("via backup"),
            vec![
                // The first call: the endpoint's own retry, then handed on when it ran out.
                ("default".to_string(), "error", Some(refused.clone())),
                ("default".to_string(), "error", Some(format!("{refused}: handed to the next profile"))),
                ("backup".to_string(), "ok", None),
                // The next: the endpoint is known down, so the call goes to the backup at once.
                (
                    "default".to_string(),
                    "error",
                    Some("retried: unavailable (backing off, or found down): handed to the next profile".to_string())
                ),
                ("backup".to_string(), "ok", None),
            ]
        )
    );
}

#[tokio::test]
async fn an_image_may_name_another_profile_for_its_repair_turns() {
    let weak = MockServer::start(vec![Reply::text("I think I will write a poem instead.")]).await;
    let strong = MockServer::start(vec![Reply::tool_call("exit", json!({"result": "repaired"}))]).await;
    let kernel = libos_kernel::Kernel::in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = "name = \"small\"\nversion = \"1\"\ndescription = \"d\"\nsystem_prompt = \"p\"\n\
                  tools = [\"now\", \"exit\"]\nmodel = \"weak\"\nrepair_model = \"strong\"\n";
    let image = libos_images::Image::parse("small.toml", source).unwrap();
    assert_eq!(image.repair_model.as_deref(), Some("strong"));
    let digest = kernel.register_image(&image.name, &image.version, &image.source).unwrap();
    let spec = libos_kernel::SpawnSpec {
        image: digest,
        goal: "finish".into(),
        workspace: dir.path().to_path_buf(),
        parent: None,
        priority: 0,
        actor: libos_kernel::Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    };
    let pid = kernel.spawn_with_grants(&spec, &image.grants).unwrap();
    let mut models = ModelRouter::default();
    for (name, server) in [("weak", &weak), ("strong", &strong)] {
        let config = HttpConfig { profile: name.into(), ..profile(server, Some(CallMode::Native)) };
        models.insert(name, Arc::new(HttpModel::new(config).unwrap()) as Arc<dyn ChatModel>);
    }
    let w = World { kernel, _dir: dir, pid };
    run_routed(&w, models).await;
    let rows: Vec<(String, &str)> = w.rows().into_iter().map(|(p, o, _)| (p, o)).collect();
    assert_eq!(
        (w.state(), rows),
        (exited("repaired"), vec![("weak".to_string(), "rejected"), ("strong".to_string(), "ok")])
    );
    // The repair turn shows the strong model what the weak one said and why it was refused.
    let repair = &strong.requests()[0].body["messages"];
    assert_eq!(repair[2], json!({"role": "assistant", "content": "I think I will write a poem instead."}));
}

/// A provider's state is not kept past 64 KiB: sent back in every later
/// prompt, it would crowd out the conversation.
#[tokio::test]
async fn reasoning_items_past_their_bound_are_not_carried() {
    let huge = json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e".repeat(70 * 1024)});
    let server = MockServer::start(vec![
        response(json!([huge, {"type": "function_call", "call_id": "c1", "name": "now", "arguments": "{}"}])),
        response(
            json!([{"type": "function_call", "call_id": "c2", "name": "exit", "arguments": "{\"result\": \"r\"}"}]),
        ),
    ])
    .await;
    let w = world("what time is it");
    w.run(kind(&server, Protocol::Responses, Some(CallMode::Native))).await;
    let input = server.requests()[1].body["input"].clone();
    let types: Vec<&str> = input.as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!((w.state(), types), (exited("r"), vec!["message", "function_call", "function_call_output"]));
}
