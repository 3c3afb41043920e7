//! A model behind an HTTP endpoint, in one of three wire protocols
//! ([`Protocol`]): OpenAI Chat Completions ([`super::wire`]), Anthropic
//! Messages ([`super::anthropic`]) and OpenAI Responses ([`super::responses`]).
//!
//! Sends the conversation in the profile's [`CallMode`] with its sampling
//! settings; reads native calls (Chat Completions' arguments arrive as a
//! JSON string; an object is accepted too), the text, the finish reason
//! and usage.
//!
//! A profile without `call_mode` asks the server once, at its first call:
//! a server that answers llama.cpp's `GET /props` gets `schema` (its
//! grammar constrains any model, with or without a tool-calling
//! template) — `text` on the Messages API, which llama.cpp serves without
//! a grammar or an enforced `tool_choice` — and its slot's context size
//! becomes the context window; any other server gets `native`. A server that refuses `tool_choice:
//! "required"` or `parallel_tool_calls` is sent `tool_choice: "auto"` from
//! then on; one that refuses the `response_format` (a schema its grammar
//! converter cannot take) is sent `text` mode from then on, with a warning.
//!
//! Connect errors, timeouts, 408, 429 (honouring `Retry-After`), 5xx, and
//! bodies that are cut off or not JSON are retried with jittered backoff,
//! except a 5xx that repeats the previous attempt's body word for word
//! (deterministic: retrying cannot help); other 4xx are fatal, but for a
//! context overflow ([`ModelError::ContextOverflow`]: the quantum sends a
//! smaller prompt).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::capacity::{Capacity, Limits};
use super::retry::{RetryPolicy, parse_retry_after};
use super::settings::{CallMode, Protocol, Sampling};
use super::{CallInfo, ChatModel, ChatRequest, ChatResponse, ModelError, RawToolCall, ReportedUsage, Retried, Window};
use super::{anthropic, responses, wire};

/// Settings of one HTTP profile.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Profile name.
    pub profile: String,
    /// The wire protocol (`kind`).
    pub protocol: Protocol,
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
    /// How requests ask for one call (none: asked of the server at the first call).
    pub call_mode: Option<CallMode>,
    /// `max_tokens`, sampling, `stop`, `extra_body`.
    pub sampling: Sampling,
    /// Tokens of the server's context per slot (none: asked of the server, else unknown).
    pub context_window: Option<u64>,
    /// Consecutive failed quanta on the same error that end a process.
    pub max_failures: u32,
}

impl HttpConfig {
    /// A profile with the default settings for everything but these.
    pub fn new(profile: &str, base_url: &str, model: &str) -> HttpConfig {
        HttpConfig {
            profile: profile.to_string(),
            protocol: Protocol::Chat,
            base_url: base_url.to_string(),
            api_key: ApiKey::None,
            model: model.to_string(),
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
            call_mode: None,
            sampling: Sampling::default(),
            context_window: None,
            max_failures: super::DEFAULT_MAX_FAILURES,
        }
    }
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

/// What the server told about itself at the first call.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Probed {
    mode: CallMode,
    context: Option<u64>,
    /// It answered llama.cpp's `/props`.
    llama: bool,
}

/// How long a profile whose endpoint could not be reached counts as down
/// for a route, which hands calls to its next profile meanwhile.
const DOWN_FOR: Duration = Duration::from_secs(30);

/// A chat model behind an HTTP endpoint.
#[derive(Debug)]
pub struct HttpModel {
    config: HttpConfig,
    url: String,
    http: reqwest::Client,
    /// Shared by every process on this profile (the router holds one model per profile).
    capacity: std::sync::Arc<Capacity>,
    probed: tokio::sync::OnceCell<Probed>,
    /// The server refused `tool_choice: "required"` or `parallel_tool_calls`.
    plain_choice: AtomicBool,
    /// The server refused the `response_format` of `schema` mode.
    no_schema: AtomicBool,
    /// Real prompt tokens per estimated one, from the last reported usage.
    ratio: Mutex<f64>,
    /// Until when the endpoint counts as down (its retries ran out on connect errors or timeouts).
    down_until: Mutex<Option<std::time::Instant>>,
}

impl HttpModel {
    /// Builds a client; fails only if the TLS backend cannot initialise.
    pub fn new(config: HttpConfig) -> Result<HttpModel, ModelError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ModelError::Fatal(format!("cannot build http client: {e}")))?;
        let url = format!("{}{}", config.base_url.trim_end_matches('/'), config.protocol.path());
        let capacity = std::sync::Arc::new(Capacity::new(config.limits));
        Ok(HttpModel {
            config,
            url,
            http,
            capacity,
            probed: tokio::sync::OnceCell::new(),
            plain_choice: AtomicBool::new(false),
            no_schema: AtomicBool::new(false),
            ratio: Mutex::new(1.0),
            down_until: Mutex::new(None),
        })
    }

    /// The mode and context window: the profile's, else what the server
    /// says (asked once; a server that does not answer is taken as `native`
    /// with an unknown context).
    async fn probe(&self) -> Probed {
        *self
            .probed
            .get_or_init(|| async {
                // A profile that says everything needs no probe (but a
                // `schema` profile on the Responses API: which form of the
                // schema the server reads depends on which server it is).
                let (mode, context) = (self.config.call_mode, self.config.context_window);
                if let (Some(mode), Some(_)) = (mode, context)
                    && !(self.config.protocol == Protocol::Responses && mode == CallMode::Schema)
                {
                    return Probed { mode, context, llama: false };
                }
                let props = self.props().await;
                let llama = props.is_some();
                let guessed = match (llama, self.config.protocol) {
                    (false, _) => CallMode::Native,
                    (true, Protocol::Messages) => CallMode::Text,
                    (true, _) => CallMode::Schema,
                };
                let mode = self.config.call_mode.unwrap_or(guessed);
                let context = self.config.context_window.or(props.flatten());
                let kind = self.config.protocol.as_str();
                tracing::info!(profile = %self.config.profile, kind, %mode, ?context, "model profile settings");
                Probed { mode, context, llama }
            })
            .await
    }

    /// llama.cpp's `GET /props` (beside `/v1`): `Some(context per slot)` if
    /// the server answered it.
    async fn props(&self) -> Option<Option<u64>> {
        let base = self.config.base_url.trim_end_matches('/');
        let origin = base.strip_suffix("/v1").unwrap_or(base);
        let resp = self.http.get(format!("{origin}/props")).timeout(Duration::from_secs(5)).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let v: serde_json::Value = resp.json().await.ok()?;
        let settings = v.get("default_generation_settings")?;
        Some(settings.get("n_ctx").and_then(serde_json::Value::as_u64))
    }

    /// The mode a request is sent in now.
    async fn mode(&self) -> CallMode {
        match self.probe().await.mode {
            CallMode::Schema if self.no_schema.load(Ordering::Relaxed) => CallMode::Text,
            mode => mode,
        }
    }

    /// The profile's settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The body of a request now.
    fn body(&self, request: &ChatRequest, mode: CallMode, native_choice: bool, llama: bool) -> Vec<u8> {
        let (model, sampling) = (&self.config.model, &self.config.sampling);
        match self.config.protocol {
            Protocol::Chat => wire::send_body(request, model, mode, sampling, native_choice),
            Protocol::Messages => anthropic::send_body(request, model, mode, sampling, native_choice),
            Protocol::Responses => responses::send_body(request, model, mode, sampling, native_choice, llama),
        }
    }

    async fn attempt(&self, body: &[u8], mode: CallMode) -> Attempt {
        let mut req =
            self.http.post(&self.url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
        let key = self.config.api_key.current();
        req = match (self.config.protocol, key) {
            (Protocol::Messages, key) => {
                let req = req.header("anthropic-version", anthropic::VERSION);
                match key {
                    Some(key) => req.header("x-api-key", key),
                    None => req,
                }
            }
            (_, Some(key)) => req.bearer_auth(key),
            (_, None) => req,
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry { message: describe_reqwest(&e, self.config.timeout), retry_after: None },
        };
        let status = resp.status();
        let retry_after =
            resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Retry {
                    message: format!("reading the response failed: {}", describe_reqwest(&e, self.config.timeout)),
                    retry_after: None,
                };
            }
        };
        if status.is_success() {
            let parsed = match self.config.protocol {
                Protocol::Chat => parse_body(&text),
                Protocol::Messages => anthropic::parse_body(&text, mode != CallMode::Native),
                Protocol::Responses => responses::parse_body(&text),
            };
            return match parsed {
                Ok(r) => Attempt::Done(Box::new(r)),
                Err(message) => Attempt::Retry { message, retry_after: None },
            };
        }
        let message = format!("endpoint returned {}: {}", status, error_message(&text));
        if let Some(limit) = overflow(&text) {
            return Attempt::Overflow { message, limit };
        }
        let lower = text.to_ascii_lowercase();
        if status.is_client_error() || status.is_server_error() {
            if mode == CallMode::Native
                && (lower.contains("tool_choice") || lower.contains("parallel_tool_calls"))
                && !self.plain_choice.swap(true, Ordering::Relaxed)
            {
                return Attempt::Resend(message);
            }
            if mode == CallMode::Schema
                && ["grammar", "json_schema", "response_format", "schema", "text.format"]
                    .iter()
                    .any(|w| lower.contains(w))
                && !self.no_schema.swap(true, Ordering::Relaxed)
            {
                return Attempt::Resend(message);
            }
        }
        if status.as_u16() == 429 {
            Attempt::Throttled { message, retry_after }
        } else if status.as_u16() == 408 || status.is_server_error() {
            Attempt::Retry { message, retry_after }
        } else {
            Attempt::Fatal(message)
        }
    }
}

/// Whether an error body says the prompt is over the context, and the
/// context size it names: llama.cpp's `exceed_context_size_error` (with
/// `n_ctx`), OpenAI's `context_length_exceeded` ("maximum context length
/// is N tokens"), and the like in words.
fn overflow(body: &str) -> Option<Option<u64>> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let err = v.get("error").unwrap_or(&v);
    let field = |k: &str| err.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
    let message = err.get("message").and_then(serde_json::Value::as_str).unwrap_or(body).to_ascii_lowercase();
    let typed = field("type") == "exceed_context_size_error" || field("code") == "context_length_exceeded";
    let worded = [
        "context length",
        "context size",
        "context window",
        "maximum context",
        "too many tokens",
        "prompt is too long",
    ]
    .iter()
    .any(|w| message.contains(w));
    if !(typed || worded) {
        return None;
    }
    let number = |after: &str| after.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok();
    let named = err.get("n_ctx").and_then(serde_json::Value::as_u64).or_else(|| {
        // OpenAI: "maximum context length is N tokens"; Anthropic: "prompt is too long: M tokens > N maximum".
        let after = message.split("context length is ").nth(1).or_else(|| message.split(" > ").nth(1))?;
        number(after)
    });
    Some(named)
}

enum Attempt {
    Done(Box<ChatResponse>),
    /// The server refused a mode's field; sent again without it, now.
    Resend(String),
    /// The prompt is over the context.
    Overflow {
        message: String,
        limit: Option<u64>,
    },
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
impl ChatModel for HttpModel {
    fn profile(&self) -> &str {
        &self.config.profile
    }

    fn available(&self) -> bool {
        let down = self.down_until.lock().is_ok_and(|d| d.is_some_and(|t| t > std::time::Instant::now()));
        !down && !self.capacity.backing_off()
    }

    async fn window(&self) -> Window {
        let probed = self.probe().await;
        Window {
            context: probed.context,
            output: u64::from(self.config.sampling.max_tokens),
            ratio: self.ratio.lock().map_or(1.0, |r| *r),
            max_failures: self.config.max_failures,
        }
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut retried: Vec<Retried> = Vec::new();
        let mut previous: Option<String> = None;
        let mut retry = 0;
        let llama = self.probe().await.llama;
        let attempted = |error: String| Retried { profile: self.config.profile.clone(), error };
        loop {
            let mode = self.mode().await;
            let native_choice = !self.plain_choice.load(Ordering::Relaxed);
            let body = self.body(request, mode, native_choice, llama);
            let tokens = (body.len() as u64).div_ceil(4);
            let info = |retried: &[Retried]| CallInfo {
                mode: Some(mode),
                protocol: Some(self.config.protocol),
                profile: None,
                finish_reason: None,
                sent: Some(self.sent(mode, native_choice, llama)),
                retried: retried.to_vec(),
            };
            self.capacity.acquire(tokens).await;
            let (message, retry_after, throttled) = match self.attempt(&body, mode).await {
                Attempt::Done(mut r) => {
                    if let Some(u) = r.usage {
                        // What the server counted against the estimate of what was sent
                        // (the response_format is a grammar, not prompt tokens).
                        let grammar = if mode == CallMode::Schema { request.tools.response_format().len() } else { 0 };
                        let estimate = (body.len().saturating_sub(grammar) as f64 / 4.0).max(1.0);
                        if let Ok(mut ratio) = self.ratio.lock() {
                            *ratio = (u.input as f64 / estimate).clamp(0.25, 4.0);
                        }
                    }
                    let finish = r.info.finish_reason.take();
                    r.info = CallInfo { finish_reason: finish, ..info(&retried) };
                    return Ok(*r);
                }
                Attempt::Fatal(message) => return Err(ModelError::Fatal(message)),
                Attempt::Overflow { message, limit } => {
                    return Err(ModelError::ContextOverflow { message, limit, info: Box::new(info(&retried)) });
                }
                Attempt::Resend(message) => {
                    let shown = libos_kernel::text::escape_line(&message);
                    tracing::warn!(profile = %self.config.profile, %mode, "the server refused a field of {mode} mode, sending without it: {shown}");
                    retried.push(attempted(format!("{message} (sent again without what it refused)")));
                    continue;
                }
                Attempt::Retry { message, retry_after } => (message, retry_after, false),
                Attempt::Throttled { message, retry_after } => (message, retry_after, true),
            };
            let delay = self.config.retry.delay(retry, retry_after);
            if throttled {
                // Everyone on this profile waits: the next `acquire` of every call does.
                self.capacity.back_off(delay);
            }
            // The same error body twice: the server answers this request so, retrying cannot help.
            let repeated = !throttled && previous.as_deref() == Some(message.as_str());
            if retry >= self.config.retry.max_retries || repeated {
                if !throttled
                    && (message.starts_with("cannot connect") || message.starts_with("request timed out"))
                    && let Ok(mut down) = self.down_until.lock()
                {
                    *down = Some(std::time::Instant::now() + DOWN_FOR);
                }
                let info = Box::new(info(&retried));
                return Err(ModelError::Transient { message, attempts: retry + 1, retry_after, info });
            }
            // A provider's error text goes to the operator's terminal: escaped, one line.
            let shown = libos_kernel::text::escape_line(&message);
            tracing::warn!(profile = %self.config.profile, retry, ?delay, "model call failed, retrying: {shown}");
            retried.push(attempted(message.clone()));
            previous = Some(message);
            if !throttled {
                tokio::time::sleep(delay).await;
            }
            retry += 1;
        }
    }
}

impl HttpModel {
    /// What a request sends besides the conversation, as recorded (JSON).
    fn sent(&self, mode: CallMode, native_choice: bool, llama: bool) -> String {
        let protocol = self.config.protocol;
        let mut fields = self.config.sampling.fields_for(protocol);
        fields.insert("call_mode".into(), mode.as_str().into());
        if protocol != Protocol::Chat {
            fields.insert("kind".into(), protocol.as_str().into());
        }
        if mode == CallMode::Native {
            let choice: serde_json::Value = match (protocol, native_choice) {
                (Protocol::Messages, true) => serde_json::json!({"type": "any", "disable_parallel_tool_use": true}),
                (Protocol::Messages, false) => serde_json::json!({"type": "auto", "disable_parallel_tool_use": true}),
                (_, true) => "required".into(),
                (_, false) => "auto".into(),
            };
            fields.entry("tool_choice").or_insert(choice);
        }
        if mode == CallMode::Schema && protocol == Protocol::Responses {
            fields.insert("schema_in".into(), if llama { "response_format" } else { "text.format" }.into());
        }
        serde_json::Value::Object(fields).to_string()
    }
}

fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("request timed out after {} s (the profile's timeout_s)", timeout.as_secs())
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
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<serde_json::Value>,
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
    let finish_reason = choice.finish_reason;
    let (content, tool_calls) = parse_message(choice.message)?;
    let usage = wire.usage.and_then(|u| match (u.prompt_tokens, u.completion_tokens) {
        (Some(input), Some(output)) => {
            let cached = u.prompt_tokens_details.as_ref().and_then(|d| d["cached_tokens"].as_u64()).unwrap_or(0);
            Some(ReportedUsage { input, output, cache_read: cached, cache_write: 0 })
        }
        _ => None,
    });
    Ok(ChatResponse {
        model: wire.model.unwrap_or_default(),
        content,
        tool_calls,
        usage,
        raw,
        carry: None,
        info: CallInfo { finish_reason, ..CallInfo::default() },
    })
}
