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
    /// The top-level body fields these settings add, `extra_body` last.
    pub fn fields(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("max_tokens".into(), self.max_tokens.into());
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
            out.insert("stop".into(), self.stop.clone().into());
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
