//! The OpenAI Responses API (`kind = "responses"`, `POST {base_url}/responses`).
//!
//! System messages become `instructions`; the conversation is a list of
//! input items: typed `message` items for the user's and the model's
//! turns, a model turn's calls as `function_call` items and their results
//! as `function_call_output` items. The reasoning items of an answer
//! (reasoning models) are carried with its turn ([`ChatMessage::Assistant`]'s
//! `carry`) and sent back verbatim before its calls, as the API asks.
//!
//! `native` mode sends function tools with `tool_choice: "required"` and
//! `parallel_tool_calls: false`; `schema` mode sends no tools and
//! constrains the answer with `text.format` (the Responses form of a JSON
//! schema) — or, to llama.cpp's server, which reads only the Chat
//! Completions form there, `response_format`; `text` mode describes the
//! tools and reads the answer's text. `max_tokens` is sent as
//! `max_output_tokens`; an `incomplete` answer's reason is its finish
//! reason (`max_output_tokens`: cut off).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::settings::{CallMode, Protocol, Sampling};
use super::wire::text_turns;
use super::{CallInfo, ChatMessage, ChatRequest, ChatResponse, RawToolCall, ReportedUsage};

fn message(role: &str, text: &str) -> Value {
    if role == "assistant" {
        json!({ "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": text }] })
    } else {
        json!({ "type": "message", "role": role, "content": text })
    }
}

/// `instructions` and `input` of a `native` request.
fn native_input(request: &ChatRequest) -> (Vec<String>, Vec<Value>) {
    let mut instructions = Vec::new();
    let mut input = Vec::new();
    for m in &request.messages {
        match m {
            ChatMessage::System(text) => instructions.push(text.clone()),
            ChatMessage::User(text) => input.push(message("user", text)),
            ChatMessage::Assistant { content, tool_calls, carry } => {
                if let Some(Ok(Value::Array(items))) = carry.as_deref().map(serde_json::from_str::<Value>) {
                    input.extend(items);
                }
                match content.as_deref() {
                    Some(text) if !text.is_empty() => input.push(message("assistant", text)),
                    _ if tool_calls.is_empty() => input.push(message("assistant", "")),
                    _ => {}
                }
                for c in tool_calls {
                    input.push(json!({
                        "type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments,
                    }));
                }
            }
            ChatMessage::Tool { call_id, content } => {
                input.push(json!({ "type": "function_call_output", "call_id": call_id, "output": content }));
            }
        }
    }
    (instructions, input)
}

/// `instructions` and `input` of a `schema` or `text` request.
fn text_input(request: &ChatRequest) -> (Vec<String>, Vec<Value>) {
    let (instructions, turns) = text_turns(request);
    (instructions, turns.iter().map(|(role, content)| message(role, content)).collect())
}

/// The body sent for `model` in `mode`. `chat_format`: a `schema` request
/// constrains the answer with the Chat Completions `response_format`
/// (llama.cpp's server), not `text.format`.
pub fn send_body(
    request: &ChatRequest,
    model: &str,
    mode: CallMode,
    sampling: &Sampling,
    native_choice: bool,
    chat_format: bool,
) -> Vec<u8> {
    let (instructions, input) = match mode {
        CallMode::Native => native_input(request),
        CallMode::Schema | CallMode::Text => text_input(request),
    };
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    if !instructions.is_empty() {
        body.insert("instructions".into(), instructions.join("\n\n").into());
    }
    body.insert("input".into(), input.into());
    if mode == CallMode::Native {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function", "name": t.name.as_str(), "description": t.description,
                    "parameters": t.parameters,
                })
            })
            .collect();
        body.insert("tools".into(), tools.into());
        if native_choice {
            body.insert("tool_choice".into(), "required".into());
            body.insert("parallel_tool_calls".into(), false.into());
        } else {
            body.insert("tool_choice".into(), "auto".into());
        }
    }
    for (k, v) in sampling.fields_for(Protocol::Responses) {
        body.insert(k, v);
    }
    let mut out = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    // The schema is spliced in as written: its `tool` comes before `args`,
    // the order decoding should follow, which a JSON map would not keep.
    if mode == CallMode::Schema && !sampling.extra_body.contains_key("text") {
        out.pop();
        if chat_format {
            out.extend_from_slice(b",\"response_format\":");
            out.extend_from_slice(request.tools.response_format());
        } else {
            out.extend_from_slice(b",\"text\":{\"format\":");
            out.extend_from_slice(request.tools.text_format());
            out.push(b'}');
        }
        out.push(b'}');
    }
    out
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    incomplete_details: Option<Value>,
    #[serde(default)]
    output: Option<Vec<Value>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<Value>,
}

/// The text and calls of output items (or of recorded ones).
pub(crate) fn read_items(items: &[Value]) -> (Option<String>, Vec<RawToolCall>) {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for item in items {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    if let Some(text) = part["text"].as_str().filter(|_| part["type"] == "output_text") {
                        texts.push(text.to_string());
                    }
                }
            }
            Some("function_call") => calls.push(RawToolCall {
                id: item["call_id"].as_str().or(item["id"].as_str()).unwrap_or("").to_string(),
                name: item["name"].as_str().unwrap_or("").to_string(),
                arguments: match &item["arguments"] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                },
            }),
            // Anthropic's blocks, as recorded.
            Some("text") => texts.push(item["text"].as_str().unwrap_or("").to_string()),
            Some("tool_use") => calls.push(RawToolCall {
                id: item["id"].as_str().unwrap_or("").to_string(),
                name: item["name"].as_str().unwrap_or("").to_string(),
                arguments: item.get("input").map_or_else(String::new, Value::to_string),
            }),
            _ => {}
        }
    }
    let text = texts.join("\n");
    (Some(text).filter(|t| !t.trim().is_empty()), calls)
}

/// Parses a 2xx body.
pub fn parse_body(text: &str) -> Result<ChatResponse, String> {
    let wire: Wire = serde_json::from_str(text).map_err(|e| format!("response body is not valid JSON: {e}"))?;
    if wire.status.as_deref() == Some("failed") {
        return Err(format!("the response failed: {}", text.chars().take(300).collect::<String>()));
    }
    let Some(items) = wire.output else { return Err("response has no output".to_string()) };
    let (content, tool_calls) = read_items(&items);
    let reasoning: Vec<Value> = items.iter().filter(|i| i["type"] == "reasoning").cloned().collect();
    let finish_reason = match wire.status.as_deref() {
        Some("incomplete") => Some(
            wire.incomplete_details.as_ref().and_then(|d| d["reason"].as_str()).unwrap_or("incomplete").to_string(),
        ),
        other => other.map(str::to_string),
    };
    let usage = wire.usage.and_then(|u| {
        let cached = u.input_tokens_details.as_ref().and_then(|d| d["cached_tokens"].as_u64()).unwrap_or(0);
        Some(ReportedUsage { input: u.input_tokens?, output: u.output_tokens?, cache_read: cached, cache_write: 0 })
    });
    Ok(ChatResponse {
        model: wire.model.unwrap_or_default(),
        content,
        tool_calls,
        usage,
        raw: Value::Array(items).to_string(),
        carry: (!reasoning.is_empty()).then(|| Value::Array(reasoning).to_string()),
        info: CallInfo { finish_reason, ..CallInfo::default() },
    })
}
