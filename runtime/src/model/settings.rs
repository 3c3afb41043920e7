//! What a profile sends besides the conversation: how it asks for exactly
//! one call ([`CallMode`]) and the sampling settings ([`Sampling`]).

use serde_json::{Map, Value};

/// How a request makes the model answer with exactly one tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallMode {
    /// OpenAI `tools` with `tool_choice: "required"` and
    /// `parallel_tool_calls: false` (dropped for a server that refuses them).
    Native,
    /// No `tools`: the prompt describes them, and `response_format`
    /// constrains decoding to a union of one `{tool, args}` per tool.
    Schema,
    /// No `tools`: the prompt states the JSON format; the text fallback reads it.
    Text,
}

impl CallMode {
    /// The name used in `libos.toml` and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            CallMode::Native => "native",
            CallMode::Schema => "schema",
            CallMode::Text => "text",
        }
    }

    /// Parses a name as [`CallMode::as_str`] writes it.
    pub fn parse(text: &str) -> Option<CallMode> {
        match text {
            "native" => Some(CallMode::Native),
            "schema" => Some(CallMode::Schema),
            "text" => Some(CallMode::Text),
            _ => None,
        }
    }
}

impl std::fmt::Display for CallMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default `max_tokens`: a tool call fits easily, a runaway answer stops early.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Sampling settings sent with every request of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Most tokens of an answer (`max_tokens`).
    pub max_tokens: u32,
    /// `temperature`, if set.
    pub temperature: Option<f64>,
    /// `top_p`, if set.
    pub top_p: Option<f64>,
    /// `seed`, if set.
    pub seed: Option<i64>,
    /// `stop` sequences (none: not sent).
    pub stop: Vec<String>,
    /// Passed through verbatim, merged last (its keys win).
    pub extra_body: Map<String, Value>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            max_tokens: DEFAULT_MAX_TOKENS,
            temperature: None,
            top_p: None,
            seed: None,
            stop: Vec::new(),
            extra_body: Map::new(),
        }
    }
}

impl Sampling {
    /// The top-level body fields these settings add in Chat Completions,
    /// `extra_body` last.
    pub fn fields(&self) -> Map<String, Value> {
        self.fields_for(Protocol::Chat)
    }

    /// The top-level body fields in `protocol`'s names (`max_tokens`,
    /// `max_output_tokens`; `stop`, `stop_sequences`), `extra_body` last.
    /// Settings a protocol has no field for are refused when the profile
    /// is read ([`Protocol::refuses`]).
    pub fn fields_for(&self, protocol: Protocol) -> Map<String, Value> {
        let mut out = Map::new();
        let (max, stop) = match protocol {
            Protocol::Chat => ("max_tokens", "stop"),
            Protocol::Messages => ("max_tokens", "stop_sequences"),
            Protocol::Responses => ("max_output_tokens", "stop"),
        };
        out.insert(max.into(), self.max_tokens.into());
        if let Some(t) = self.temperature {
            out.insert("temperature".into(), t.into());
        }
        if let Some(p) = self.top_p {
            out.insert("top_p".into(), p.into());
        }
        if let Some(s) = self.seed {
            out.insert("seed".into(), s.into());
        }
        if !self.stop.is_empty() {
            out.insert(stop.into(), self.stop.clone().into());
        }
        for (k, v) in &self.extra_body {
            out.insert(k.clone(), v.clone());
        }
        out
    }

    /// One line for people: `max_tokens=1024 temperature=0.2 extra_body={...}`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("max_tokens={}", self.max_tokens)];
        if let Some(t) = self.temperature {
            parts.push(format!("temperature={t}"));
        }
        if let Some(p) = self.top_p {
            parts.push(format!("top_p={p}"));
        }
        if let Some(s) = self.seed {
            parts.push(format!("seed={s}"));
        }
        if !self.stop.is_empty() {
            parts.push(format!("stop={}", Value::from(self.stop.clone())));
        }
        if !self.extra_body.is_empty() {
            parts.push(format!("extra_body={}", Value::Object(self.extra_body.clone())));
        }
        parts.join(" ")
    }
}

/// The wire protocol of an HTTP profile (`kind` in `libos.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI Chat Completions (`POST /chat/completions`): `kind = "openai"`.
    #[default]
    Chat,
    /// The Anthropic Messages API (`POST /messages`): `kind = "anthropic"`.
    Messages,
    /// The OpenAI Responses API (`POST /responses`): `kind = "responses"`.
    Responses,
}

impl Protocol {
    /// The `kind` naming it in `libos.toml` and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Chat => "openai",
            Protocol::Messages => "anthropic",
            Protocol::Responses => "responses",
        }
    }

    /// Parses a `kind` as [`Protocol::as_str`] writes it.
    pub fn parse(kind: &str) -> Option<Protocol> {
        match kind {
            "openai" => Some(Protocol::Chat),
            "anthropic" => Some(Protocol::Messages),
            "responses" => Some(Protocol::Responses),
            _ => None,
        }
    }

    /// The path of its endpoint under the profile's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Protocol::Chat => "/chat/completions",
            Protocol::Messages => "/messages",
            Protocol::Responses => "/responses",
        }
    }

    /// The call modes it can send: the Messages API has no `response_format`.
    pub fn modes(self) -> &'static [CallMode] {
        match self {
            Protocol::Messages => &[CallMode::Native, CallMode::Text],
            Protocol::Chat | Protocol::Responses => &[CallMode::Native, CallMode::Schema, CallMode::Text],
        }
    }

    /// Why a sampling setting cannot be sent in this protocol, if one cannot.
    pub fn refuses(self, sampling: &Sampling) -> Option<String> {
        let unsupported = match self {
            Protocol::Chat => None,
            Protocol::Messages => sampling.seed.is_some().then_some("seed"),
            Protocol::Responses => {
                if sampling.seed.is_some() {
                    Some("seed")
                } else if !sampling.stop.is_empty() {
                    Some("stop")
                } else {
                    None
                }
            }
        }?;
        Some(format!(
            "`{unsupported}` is not part of the {} API (kind = \"{}\"); a server that takes it anyway can be sent it in extra_body",
            self.api(),
            self.as_str()
        ))
    }

    /// The API's name, for people.
    pub fn api(self) -> &'static str {
        match self {
            Protocol::Chat => "Chat Completions",
            Protocol::Messages => "Anthropic Messages",
            Protocol::Responses => "OpenAI Responses",
        }
    }
}

/// Whether a reported finish reason says the answer was cut off at its
/// token limit (`length` in Chat Completions, `max_tokens` in Messages,
/// `max_output_tokens` in Responses).
pub fn cut_off(finish_reason: Option<&str>) -> bool {
    matches!(finish_reason, Some("length" | "max_tokens" | "max_output_tokens"))
}
