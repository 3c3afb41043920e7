//! The Anthropic Messages API (`kind = "anthropic"`, `POST {base_url}/messages`).
//!
//! `native` mode sends the tools with `input_schema` and `tool_choice:
//! {"type": "any", "disable_parallel_tool_use": true}`: on Anthropic's
//! endpoints the answer then holds exactly one `tool_use` block by
//! construction, its `input` a JSON object the kernel validates against
//! the schema (Anthropic constrains the choice of a tool, not the
//! arguments' grammar). The Messages API has no `response_format`, so
//! there is no `schema` mode; `text` mode describes the tools in the system
//! prompt and prefills the assistant's turn with `{"tool": "`, which the
//! answer continues (a server that answers with a whole object instead,
//! as llama.cpp's does, is read as it is).
//!
//! The conversation: system messages become the top-level `system`; a
//! model turn's calls become `tool_use` blocks and their results
//! `tool_result` blocks of the next user turn; consecutive turns of one
//! role are merged, as the API requires alternating roles. The answer's
//! `stop_reason` is the call's finish reason (`max_tokens`: cut off), and
//! usage counts the cache's tokens into the input (`input_tokens` excludes
//! them).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::settings::{CallMode, Protocol, Sampling};
use super::wire::text_turns;
use super::{CallInfo, ChatMessage, ChatRequest, ChatResponse, RawToolCall, ReportedUsage};

/// The API version sent as `anthropic-version`.
pub const VERSION: &str = "2023-06-01";

/// What `text` mode's prefilled assistant turn says: the start of a call.
pub const PREFILL: &str = "{\"tool\": \"";

/// A tool-use id as the API allows them (`^[a-zA-Z0-9_-]+$`): a call made
/// through another protocol, or by the kernel, may have any id.
fn block_id(id: &str) -> String {
    let id: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if id.is_empty() { "call".to_string() } else { id }
}

/// A call's arguments as the object a `tool_use` block needs: arguments
/// that are not an object (a rejected call shown back) are kept as text.
fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "invalid_arguments": arguments }),
    }
}

/// Appends a turn, merging it into the previous one of the same role.
fn push(out: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if let Some(last) = out.last_mut()
        && last["role"] == role
        && let Some(content) = last["content"].as_array_mut()
    {
        content.extend(blocks);
        return;
    }
    out.push(json!({ "role": role, "content": blocks }));
}

fn text_block(text: &str) -> Value {
    // The API refuses empty text blocks (an empty answer shown back in a repair).
    let text = if text.is_empty() { "(no answer)" } else { text };
    json!({ "type": "text", "text": text })
}

/// `system` and `messages` of a `native` request.
fn native_messages(request: &ChatRequest) -> (Vec<String>, Vec<Value>) {
    let mut system = Vec::new();
    let mut out = Vec::new();
    for m in &request.messages {
        match m {
            ChatMessage::System(text) => system.push(text.clone()),
            ChatMessage::User(text) => push(&mut out, "user", vec![text_block(text)]),
            ChatMessage::Assistant { content, tool_calls, .. } => {
                let mut blocks = Vec::new();
                if let Some(text) = content.as_deref().filter(|t| !t.is_empty()) {
                    blocks.push(text_block(text));
                }
                for c in tool_calls {
                    blocks.push(json!({
                        "type": "tool_use", "id": block_id(&c.id), "name": c.name, "input": input(&c.arguments),
                    }));
                }
                if blocks.is_empty() {
                    blocks.push(text_block(""));
                }
                push(&mut out, "assistant", blocks);
            }
            ChatMessage::Tool { call_id, content } => push(
                &mut out,
                "user",
                vec![json!({ "type": "tool_result", "tool_use_id": block_id(call_id), "content": content })],
            ),
        }
    }
    (system, out)
}

/// `system` and `messages` of a `text` request: the conversation as text
/// turns, and the prefilled start of the answer.
fn text_request(request: &ChatRequest) -> (Vec<String>, Vec<Value>) {
    let (system, turns) = text_turns(request);
    let mut out = Vec::new();
    for (role, content) in &turns {
        push(&mut out, role, vec![text_block(content)]);
    }
    push(&mut out, "assistant", vec![json!({ "type": "text", "text": PREFILL })]);
    (system, out)
}

/// The body sent for `model` in `mode` (`schema` is sent as `text`: the
/// API has no `response_format`, and profiles cannot choose it).
/// `native_choice`: force one tool (a server that refused it gets `auto`).
pub fn send_body(
    request: &ChatRequest,
    model: &str,
    mode: CallMode,
    sampling: &Sampling,
    native_choice: bool,
) -> Vec<u8> {
    let (system, messages) = match mode {
        CallMode::Native => native_messages(request),
        CallMode::Schema | CallMode::Text => text_request(request),
    };
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    body.insert("messages".into(), messages.into());
    if mode == CallMode::Native {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({ "name": t.name.as_str(), "description": t.description, "input_schema": t.parameters }))
            .collect();
        body.insert("tools".into(), tools.into());
        let choice = if native_choice {
            json!({ "type": "any", "disable_parallel_tool_use": true })
        } else {
            json!({ "type": "auto", "disable_parallel_tool_use": true })
        };
        body.insert("tool_choice".into(), choice);
    }
    for (k, v) in sampling.fields_for(Protocol::Messages) {
        body.insert(k, v);
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
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
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// Where the JSON object at the start of `text` ends, if it starts with one.
fn leading_object(text: &str) -> Option<usize> {
    let start = text.len() - text.trim_start().len();
    let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
    match stream.next() {
        Some(Ok(Value::Object(_))) => Some(start + stream.byte_offset()),
        _ => None,
    }
}

/// Parses a 2xx body (`prefilled`: the request was sent in `text` mode,
/// and the answer continues [`PREFILL`]).
pub fn parse_body(text: &str, prefilled: bool) -> Result<ChatResponse, String> {
    let wire: Wire = serde_json::from_str(text).map_err(|e| format!("response body is not valid JSON: {e}"))?;
    if wire.content.is_empty() && wire.stop_reason.is_none() {
        return Err("response has no content and no stop_reason".to_string());
    }
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for block in &wire.content {
        match block["type"].as_str() {
            Some("text") => texts.push(block["text"].as_str().unwrap_or("").to_string()),
            Some("tool_use") => tool_calls.push(RawToolCall {
                id: block["id"].as_str().unwrap_or("").to_string(),
                name: block["name"].as_str().unwrap_or("").to_string(),
                arguments: block.get("input").map_or_else(String::new, Value::to_string),
            }),
            // Thinking blocks and the like are not the answer.
            _ => {}
        }
    }
    let mut content = texts.join("\n");
    let mut blocks = wire.content;
    if prefilled {
        // A continuation of the prefill is completed; a whole object is kept.
        if !content.trim_start().starts_with('{') {
            content = format!("{PREFILL}{content}");
        }
        // The answer is the object the prefill began: text after it closes
        // is past the answer (a small model goes on repeating itself), as
        // if a stop sequence had cut it. The record keeps it apart, in a
        // block no reader takes for the answer, so a replay reads the same call.
        let trailing = leading_object(&content).map(|end| content.split_off(end));
        blocks.retain(|b| b["type"] != "text");
        blocks.insert(0, text_block(&content));
        if let Some(rest) = trailing.filter(|t| !t.trim().is_empty()) {
            blocks.push(json!({ "type": "libos_past_the_answer", "text": rest }));
        }
    }
    let usage = wire.usage.and_then(|u| {
        let (read, write) = (u.cache_read_input_tokens.unwrap_or(0), u.cache_creation_input_tokens.unwrap_or(0));
        Some(ReportedUsage {
            input: u.input_tokens? + read + write,
            output: u.output_tokens?,
            cache_read: read,
            cache_write: write,
        })
    });
    Ok(ChatResponse {
        model: wire.model.unwrap_or_default(),
        content: Some(content).filter(|c| !c.trim().is_empty()),
        tool_calls,
        usage,
        raw: Value::Array(blocks).to_string(),
        carry: None,
        info: CallInfo { finish_reason: wire.stop_reason, ..CallInfo::default() },
    })
}
