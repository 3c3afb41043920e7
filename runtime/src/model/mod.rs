//! Chat models: the trait the quantum calls, and its implementations.
//!
//! - [`http`]: a model behind an HTTP endpoint, with retries, in one of
//!   three wire protocols: OpenAI Chat Completions ([`wire`]), Anthropic
//!   Messages ([`anthropic`]) and OpenAI Responses ([`responses`]).
//! - [`route`]: a profile with fallbacks, handing a call to the next
//!   profile when one is down or rate-limited.
//! - [`scripted`]: plays a file of tool calls (demos, tests, experiments).
//! - [`wire`]: the Chat Completions body, shared by the HTTP client and the digest.
//! - [`retry`]: backoff policy.

pub mod anthropic;
pub mod capacity;
pub mod http;
pub mod replay;
pub mod responses;
pub mod retry;
pub mod route;
pub mod scripted;
pub mod settings;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;
use libos_kernel::Pid;
use libos_tools::ToolSpec;

/// One message of a chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatMessage {
    /// Instructions.
    System(String),
    /// The user's turn (the goal, notices).
    User(String),
    /// A model turn: optional text and the tool calls it made.
    Assistant {
        /// Text the model gave.
        content: Option<String>,
        /// Calls it made.
        tool_calls: Vec<RawToolCall>,
        /// Provider state the model's turn carries to the next request
        /// (the Responses API's reasoning items, as a JSON array), sent
        /// back verbatim by the protocol that produced it, ignored by others.
        carry: Option<String>,
    },
    /// A tool's result, answering one call.
    Tool {
        /// The call answered.
        call_id: String,
        /// The result text.
        content: String,
    },
}

/// A tool call as a model produced it: a name and a JSON text, unvalidated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawToolCall {
    /// The model's id for the call.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text.
    pub arguments: String,
}

/// Who is asking; not sent to the model, but scripted and replay models use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    /// The process.
    pub pid: Pid,
    /// Its image name.
    pub image: String,
    /// Its goal.
    pub goal: String,
    /// The quantum number.
    pub quantum: u64,
    /// How many model calls the process made before this one.
    pub call_index: u64,
}

/// The tools a request offers, with their Chat Completions JSON serialised
/// once: every quantum of a process sends (and digests) the same table.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolTable {
    specs: Vec<ToolSpec>,
    json: Vec<u8>,
    response_format: Vec<u8>,
    text_format: Vec<u8>,
    loosened: Vec<(String, String)>,
    described: String,
}

impl ToolTable {
    /// A table of these tools, in this order.
    pub fn new(specs: Vec<ToolSpec>) -> ToolTable {
        let json = wire::tools_json(&specs);
        let (format, loosened) = wire::response_format(&specs);
        let described = wire::describe_tools(&specs);
        let (response_format, text_format) = (wire::chat_format(&format), wire::text_format(&format));
        ToolTable { specs, json, response_format, text_format, loosened, described }
    }

    /// The `tools` array as JSON.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The `response_format` of `schema` mode: one `{tool, args}` per tool.
    pub fn response_format(&self) -> &[u8] {
        &self.response_format
    }

    /// The same schema as the Responses API's `text.format`.
    pub fn text_format(&self) -> &[u8] {
        &self.text_format
    }

    /// Tools whose argument schemas use a keyword constrained decoders do
    /// not support, with that keyword: in `schema` mode their `args` are
    /// only constrained to an object, and validated after the answer.
    pub fn loosened(&self) -> &[(String, String)] {
        &self.loosened
    }

    /// The tools and the answer format, as `schema` and `text` modes put
    /// them in the system message.
    pub fn described(&self) -> &str {
        &self.described
    }
}

impl std::ops::Deref for ToolTable {
    type Target = [ToolSpec];

    fn deref(&self) -> &[ToolSpec] {
        &self.specs
    }
}

impl ToolTable {
    /// A shared table, as requests hold it.
    pub fn shared(specs: Vec<ToolSpec>) -> std::sync::Arc<ToolTable> {
        std::sync::Arc::new(ToolTable::new(specs))
    }
}

/// A chat completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Tools offered (exactly the process's tool table; shared, built once per tool table).
    pub tools: std::sync::Arc<ToolTable>,
    /// Caller information.
    pub meta: RequestMeta,
}

/// Tokens a model reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportedUsage {
    /// Prompt tokens, cached ones included.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
    /// Of the prompt tokens, read from the server's prompt cache.
    pub cache_read: u64,
    /// Of the prompt tokens, written to the server's prompt cache.
    pub cache_write: u64,
}

/// An attempt of a call that failed and was made again (or handed to a
/// fallback profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retried {
    /// The profile the attempt went to.
    pub profile: String,
    /// What it saw.
    pub error: String,
}

/// How a call was made, for the record: what the client sent and what the
/// server said about the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// The call mode the request used (none: not an HTTP model).
    pub mode: Option<settings::CallMode>,
    /// The wire protocol (none: not an HTTP model).
    pub protocol: Option<settings::Protocol>,
    /// The profile that answered, where a route handed the call on from
    /// the one asked (none: the one asked).
    pub profile: Option<String>,
    /// Why the answer ended (`stop`, `length`, `tool_calls`, ...), as reported.
    pub finish_reason: Option<String>,
    /// The settings sent besides the conversation (JSON: mode, max_tokens, sampling, extra_body).
    pub sent: Option<String>,
    /// Earlier attempts of this call that failed and were retried.
    pub retried: Vec<Retried>,
}

/// A model's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatResponse {
    /// Model name as reported.
    pub model: String,
    /// Text content.
    pub content: Option<String>,
    /// Native tool calls.
    pub tool_calls: Vec<RawToolCall>,
    /// Usage, if reported.
    pub usage: Option<ReportedUsage>,
    /// The message as received (JSON text), for the record.
    pub raw: String,
    /// Provider state to send back with this turn (see [`ChatMessage::Assistant`]).
    pub carry: Option<String>,
    /// How the call was made.
    pub info: CallInfo,
}

/// A model call that produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Worth trying again later (connect errors, timeouts, 429, 5xx) once retries ran out.
    #[error("model unavailable: {message} (attempts: {attempts})")]
    Transient {
        /// What the last attempt saw.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// The server's last `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// How the call was made (the earlier attempts' errors among it).
        info: Box<CallInfo>,
    },
    /// The prompt does not fit the server's context: the next attempt
    /// must send a smaller one.
    #[error("the prompt does not fit the model's context: {message}")]
    ContextOverflow {
        /// The server's words.
        message: String,
        /// The context size the server named, if it did.
        limit: Option<u64>,
        /// How the call was made.
        info: Box<CallInfo>,
    },
    /// Will not work by retrying (bad request, authentication, script exhausted).
    #[error("{0}")]
    Fatal(String),
}

/// What the quantum must know of a model to size its prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// Tokens of the server's context (per slot), if known.
    pub context: Option<u64>,
    /// Tokens reserved for the answer (`max_tokens`).
    pub output: u64,
    /// Real tokens per estimated token (bytes / 4), learned from the
    /// server's reported prompt tokens (1.0 until it reported any).
    pub ratio: f64,
    /// Consecutive failed quanta on the same error that end the process.
    pub max_failures: u32,
}

/// The default of [`Window::max_failures`].
pub const DEFAULT_MAX_FAILURES: u32 = 5;

/// A chat model. Implementations must be cheap to share across tasks.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// The profile name it was configured under (recorded with each call).
    fn profile(&self) -> &str;

    /// The model's context window and output reservation.
    async fn window(&self) -> Window {
        Window { context: None, output: 0, ratio: 1.0, max_failures: DEFAULT_MAX_FAILURES }
    }

    /// Whether a call now would be worth making: false while the endpoint
    /// is backing off after a 429 or was found down, so that a route hands
    /// the call to its next profile at once.
    fn available(&self) -> bool {
        true
    }

    /// Completes one request. Retries of transient errors happen inside.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError>;
}
