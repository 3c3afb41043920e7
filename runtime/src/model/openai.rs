//! OpenAI-compatible Chat Completions over HTTP.
//!
//! Sends `tools` with their JSON schemas and `tool_choice: "auto"`; reads
//! native `tool_calls` (arguments arrive as a JSON string; an object is
//! accepted too) and usage. Connect errors, timeouts, 408, 429 (honouring
//! `Retry-After`), 5xx, and bodies that are cut off or not JSON are retried
//! with jittered backoff; other 4xx are fatal.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::capacity::{Capacity, Limits};
use super::retry::{RetryPolicy, parse_retry_after};
use super::wire::request_body;
use super::{ChatModel, ChatRequest, ChatResponse, ModelError, RawToolCall, ReportedUsage};

/// Settings of one OpenAI-compatible profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// Profile name.
    pub profile: String,
    /// Base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Where the bearer token comes from, if the endpoint needs one.
    pub api_key: ApiKey,
    /// Model name sent in requests.
    pub model: String,
    /// Timeout of one HTTP attempt.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Requests/min and tokens/min limits of the profile.
    pub limits: Limits,
}

/// Where a profile's bearer token comes from. A key named by its
/// environment variable is read when a request is sent, and never kept in
/// the scheduler's structures (nor shown by `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub enum ApiKey {
    /// The endpoint needs none.
    None,
    /// Read from this environment variable at each request.
    Env(String),
    /// Given by an embedding program.
    Value(String),
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiKey::None => f.write_str("None"),
            ApiKey::Env(var) => write!(f, "Env({var})"),
            ApiKey::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

impl ApiKey {
    /// The token to send now, if any.
    pub fn current(&self) -> Option<String> {
        match self {
            ApiKey::None => None,
            ApiKey::Env(var) => std::env::var(var).ok().filter(|k| !k.is_empty()),
            ApiKey::Value(k) => Some(k.clone()),
        }
    }
}

/// An OpenAI-compatible chat model.
#[derive(Debug, Clone)]
pub struct OpenAiModel {
    config: OpenAiConfig,
    url: String,
    http: reqwest::Client,
    /// Shared by every process on this profile (the router holds one model per profile).
    capacity: std::sync::Arc<Capacity>,
}

impl OpenAiModel {
    /// Builds a client; fails only if the TLS backend cannot initialise.
    pub fn new(config: OpenAiConfig) -> Result<OpenAiModel, ModelError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ModelError::Fatal(format!("cannot build http client: {e}")))?;
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let capacity = std::sync::Arc::new(Capacity::new(config.limits));
        Ok(OpenAiModel { config, url, http, capacity })
    }

    /// The profile's settings.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    async fn attempt(&self, body: &[u8]) -> Attempt {
        let mut req =
            self.http.post(&self.url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
        if let Some(key) = self.config.api_key.current() {
            req = req.bearer_auth(key);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry { message: describe_reqwest(&e), retry_after: None },
        };
        let status = resp.status();
        let retry_after =
            resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Retry {
                    message: format!("reading the response failed: {}", describe_reqwest(&e)),
                    retry_after: None,
                };
            }
        };
        if status.is_success() {
            return match parse_body(&text) {
                Ok(r) => Attempt::Done(r),
                Err(message) => Attempt::Retry { message, retry_after: None },
            };
        }
        let message = format!("endpoint returned {}: {}", status, error_message(&text));
        if status.as_u16() == 429 {
            Attempt::Throttled { message, retry_after }
        } else if status.as_u16() == 408 || status.is_server_error() {
            Attempt::Retry { message, retry_after }
        } else {
            Attempt::Fatal(message)
        }
    }
}

enum Attempt {
    Done(ChatResponse),
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    /// 429: the whole profile backs off.
    Throttled {
        message: String,
        retry_after: Option<Duration>,
    },
    Fatal(String),
}

#[async_trait]
impl ChatModel for OpenAiModel {
    fn profile(&self) -> &str {
        &self.config.profile
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = request_body(request, &self.config.model);
        let tokens = (body.len() as u64).div_ceil(4);
        let mut retry = 0;
        loop {
            self.capacity.acquire(tokens).await;
            let (message, retry_after, throttled) = match self.attempt(&body).await {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fatal(message) => return Err(ModelError::Fatal(message)),
                Attempt::Retry { message, retry_after } => (message, retry_after, false),
                Attempt::Throttled { message, retry_after } => (message, retry_after, true),
            };
            let delay = self.config.retry.delay(retry, retry_after);
            if throttled {
                // Everyone on this profile waits: the next `acquire` of every call does.
                self.capacity.back_off(delay);
            }
            if retry >= self.config.retry.max_retries {
                return Err(ModelError::Transient { message, attempts: retry + 1, retry_after });
            }
            // A provider's error text goes to the operator's terminal: escaped, one line.
            let shown = libos_kernel::text::escape_line(&message);
            tracing::warn!(profile = %self.config.profile, retry, ?delay, "model call failed, retrying: {shown}");
            if !throttled {
                tokio::time::sleep(delay).await;
            }
            retry += 1;
        }
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        format!("cannot connect: {}", root_cause(e))
    } else {
        root_cause(e)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn error_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: String,
    }
    let text = serde_json::from_str::<Envelope>(body).map(|e| e.error.message).unwrap_or_else(|_| body.to_string());
    let line = text.lines().next().unwrap_or("").trim();
    let mut end = line.len().min(300);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    if line.is_empty() { "(empty body)".to_string() } else { line[..end].to_string() }
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: serde_json::Value,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

/// The text and tool calls of an assistant message object (as Chat
/// Completions returns it, and as libos records it).
pub(crate) fn parse_message(message: serde_json::Value) -> Result<(Option<String>, Vec<RawToolCall>), String> {
    let message: WireMessage =
        serde_json::from_value(message).map_err(|e| format!("response message is malformed: {e}"))?;
    let tool_calls = message
        .tool_calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| RawToolCall {
            id: c.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{i}")),
            name: c.function.name,
            arguments: match c.function.arguments {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
            },
        })
        .collect();
    Ok((message.content.filter(|c| !c.trim().is_empty()), tool_calls))
}

/// Parses a 2xx body. An error here is retried: a body cut off in transit or a
/// proxy's error page is a transport problem, not the model's answer.
fn parse_body(text: &str) -> Result<ChatResponse, String> {
    let wire: WireResponse = serde_json::from_str(text).map_err(|e| format!("response body is not valid JSON: {e}"))?;
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err("response has no choices".to_string());
    };
    let raw = choice.message.to_string();
    let (content, tool_calls) = parse_message(choice.message)?;
    let usage = wire.usage.and_then(|u| match (u.prompt_tokens, u.completion_tokens) {
        (Some(input), Some(output)) => Some(ReportedUsage { input, output }),
        _ => None,
    });
    Ok(ChatResponse { model: wire.model.unwrap_or_default(), content, tool_calls, usage, raw })
}
