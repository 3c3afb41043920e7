//! The OpenAI-compatible client against a mock server on 127.0.0.1:0.

use std::time::{Duration, Instant};

use libos_kernel::Pid;
use libos_runtime::model::retry::RetryPolicy;
use libos_runtime::{ChatMessage, ChatModel, ChatRequest, HttpConfig, HttpModel, ModelError, RawToolCall, RequestMeta};
use libos_tests::{MockServer, Reply};
use libos_tools::ToolName;
use pretty_assertions::assert_eq;
use serde_json::json;

fn client(server: &MockServer, max_retries: u32, timeout: Duration) -> HttpModel {
    HttpModel::new(HttpConfig {
        api_key: libos_runtime::model::http::ApiKey::Value("sk-test".into()),
        timeout,
        retry: RetryPolicy { max_retries, base: Duration::from_millis(5), max_delay: Duration::from_secs(5) },
        ..HttpConfig::new("test", &server.base_url(), "mock-1")
    })
    .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::System("sys".into()), ChatMessage::User("Goal: g".into())],
        tools: libos_runtime::ToolTable::shared(
            libos_tools::Registry::builtin()
                .table(&[ToolName::builtin("read_file"), ToolName::builtin("exit")])
                .unwrap()
                .specs(),
        ),
        meta: RequestMeta { pid: Pid(1), image: "assistant".into(), goal: "g".into(), quantum: 1, call_index: 0 },
    }
}

async fn complete(server: &MockServer, max_retries: u32) -> Result<libos_runtime::ChatResponse, ModelError> {
    client(server, max_retries, Duration::from_secs(5)).complete(&request()).await
}

#[tokio::test]
async fn native_tool_calls_are_parsed_and_the_request_carries_schemas() {
    let server = MockServer::start(vec![Reply::tool_call("read_file", json!({"path": "a.txt"}))]).await;
    let resp = complete(&server, 0).await.unwrap();
    assert_eq!(
        (resp.model.as_str(), resp.content, resp.tool_calls, resp.usage.map(|u| (u.input, u.output))),
        (
            "mock-1",
            None,
            vec![RawToolCall {
                id: "call_abc".into(),
                name: "read_file".into(),
                arguments: r#"{"path":"a.txt"}"#.into()
            }],
            Some((100, 20))
        )
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].line, "POST /v1/chat/completions HTTP/1.1");
    assert!(reqs[0].headers.contains(&("authorization".into(), "Bearer sk-test".into())));
    let body = &reqs[0].body;
    assert_eq!(body["model"], "mock-1");
    assert_eq!(body["tool_choice"], "required");
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["tools"][0]["function"]["name"], "read_file");
    assert_eq!(body["tools"][0]["function"]["parameters"]["required"], json!(["path"]));
    assert_eq!(body["messages"][1], json!({"role": "user", "content": "Goal: g"}));
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let server = MockServer::start(vec![
        Reply::status(429, r#"{"error": {"message": "slow down"}}"#).header("retry-after", "1"),
        Reply::text("hi"),
    ])
    .await;
    let started = Instant::now();
    let resp = complete(&server, 3).await.unwrap();
    assert_eq!(resp.content.as_deref(), Some("hi"));
    assert_eq!(server.requests().len(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
}

#[tokio::test]
async fn server_errors_are_retried_until_the_retries_run_out() {
    let server = MockServer::start(vec![]).await;
    server.always(Reply::status(503, r#"{"error": {"message": "overloaded"}}"#));
    let err = complete(&server, 2).await.unwrap_err();
    // The same body three times would stop at the second: this one says so each time differently.
    let ModelError::Transient { message, attempts, info, .. } = err else { panic!("{err:?}") };
    assert_eq!(
        (message.as_str(), attempts, info.retried.len()),
        ("endpoint returned 503 Service Unavailable: overloaded", 2, 1)
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_slow_server_times_out_and_is_retried() {
    let server = MockServer::start(vec![]).await;
    server.always(Reply::text("late").delayed(Duration::from_secs(3)));
    let err = client(&server, 1, Duration::from_millis(200)).complete(&request()).await.unwrap_err();
    let ModelError::Transient { message, attempts, info, .. } = err else { panic!("{err:?}") };
    let timed_out = "request timed out after 0 s (the profile's timeout_s)";
    let retried: Vec<(&str, &str)> = info.retried.iter().map(|r| (r.profile.as_str(), r.error.as_str())).collect();
    assert_eq!((message.as_str(), attempts, retried), (timed_out, 2, vec![("test", timed_out)]));
}

#[tokio::test]
async fn malformed_truncated_empty_and_reset_answers_are_transient() {
    let cases = [
        (Reply::status(200, "this is not json"), "response body is not valid JSON: expected ident at line 1 column 2"),
        (Reply::ok(json!({"choices": []})), "response has no choices"),
    ];
    for (reply, message) in cases {
        let server = MockServer::start(vec![]).await;
        server.always(reply);
        let err = complete(&server, 1).await.unwrap_err();
        let ModelError::Transient { message: got, attempts, .. } = err else { panic!("{err:?}") };
        assert_eq!((got.as_str(), attempts), (message, 2));
    }
    for reply in [Reply::Truncated, Reply::Reset] {
        let server = MockServer::start(vec![]).await;
        server.always(reply);
        let err = complete(&server, 1).await.unwrap_err();
        assert!(matches!(err, ModelError::Transient { attempts: 2, .. }), "{err:?}");
    }
    // A transient failure followed by success is just a success.
    let server = MockServer::start(vec![Reply::Truncated, Reply::text("ok")]).await;
    assert_eq!(complete(&server, 2).await.unwrap().content.as_deref(), Some("ok"));
}

#[tokio::test]
async fn client_errors_are_fatal_at_once() {
    let server = MockServer::start(vec![Reply::status(401, r#"{"error": {"message": "bad key"}}"#)]).await;
    let err = complete(&server, 5).await.unwrap_err();
    assert_eq!(err, ModelError::Fatal("endpoint returned 401 Unauthorized: bad key".into()));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let model = HttpModel::new(HttpConfig {
        timeout: Duration::from_secs(2),
        retry: RetryPolicy { max_retries: 1, base: Duration::from_millis(1), max_delay: Duration::from_millis(5) },
        ..HttpConfig::new("p", &format!("http://127.0.0.1:{port}/v1"), "m")
    })
    .unwrap();
    let err = model.complete(&request()).await.unwrap_err();
    let ModelError::Transient { message, attempts: 2, .. } = err else { panic!("{err:?}") };
    assert!(message.starts_with("cannot connect"), "{message}");
}
