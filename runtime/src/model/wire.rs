//! The Chat Completions request body. Used to send requests and to digest
//! them, so the same request always has the same digest whichever model
//! answers it.

use serde_json::{Value, json};

use super::{ChatMessage, ChatRequest, RawToolCall};

fn tool_call_json(c: &RawToolCall) -> Value {
    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
}

/// The `messages` array.
pub fn messages_json(messages: &[ChatMessage]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| match m {
                ChatMessage::System(text) => json!({"role": "system", "content": text}),
                ChatMessage::User(text) => json!({"role": "user", "content": text}),
                ChatMessage::Assistant { content, tool_calls } if tool_calls.is_empty() => {
                    json!({"role": "assistant", "content": content})
                }
                ChatMessage::Assistant { content, tool_calls } => json!({
                    "role": "assistant",
                    "content": content,
                    "tool_calls": tool_calls.iter().map(tool_call_json).collect::<Vec<_>>(),
                }),
                ChatMessage::Tool { call_id, content } => {
                    json!({"role": "tool", "tool_call_id": call_id, "content": content})
                }
            })
            .collect(),
    )
}

/// The full request body for `model`.
pub fn request_json(request: &ChatRequest, model: &str) -> Value {
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
        .collect();
    json!({
        "model": model,
        "messages": messages_json(&request.messages),
        "tools": tools,
        "tool_choice": "auto",
    })
}

/// sha256 (hex) and size of the request's canonical body, model name excluded.
pub fn request_digest(request: &ChatRequest) -> (String, u64) {
    let text = request_json(request, "").to_string();
    (libos_kernel::audit::sha256_hex(text.as_bytes()), text.len() as u64)
}
