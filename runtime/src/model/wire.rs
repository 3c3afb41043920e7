//! The Chat Completions request body. Used to send requests and to digest
//! them, so the same request always has the same digest whichever model
//! answers it.
//!
//! The body is serialised straight from borrowed wire structs (no
//! intermediate `serde_json::Value`), and the digest hashes the bytes as they
//! are written: a quantum digests its request on every model call, and
//! building a tree of the tool schemas first was a third of its overhead.
//! Fields are declared in sorted order so the bytes are canonical JSON.
//!
//! The digest is of the request in its native form whatever the profile's
//! [`CallMode`]: the same conversation has the same digest on every server.
//! What is sent ([`send_body`]) depends on the mode: `native` adds
//! `tool_choice: "required"` and `parallel_tool_calls: false`; `schema` and
//! `text` send no `tools`, describe them in the system message, and show the
//! transcript's calls as `{"tool", "args"}` text (and results as user
//! turns), which every chat template can render; `schema` adds a
//! `response_format` whose JSON schema is a union of one `{tool, args}` per tool.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::settings::{CallMode, Sampling};
use super::{ChatMessage, ChatRequest, RawToolCall};

#[derive(Serialize)]
#[serde(untagged)]
enum Message<'a> {
    Plain { content: Option<&'a str>, role: &'static str },
    Calls { content: Option<&'a str>, role: &'static str, tool_calls: Vec<Call<'a>> },
    Tool { content: &'a str, role: &'static str, tool_call_id: &'a str },
}

#[derive(Serialize)]
struct Call<'a> {
    function: CallFunction<'a>,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct CallFunction<'a> {
    arguments: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct Tool<'a> {
    function: ToolFunction<'a>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct ToolFunction<'a> {
    description: &'a str,
    name: &'a str,
    parameters: &'a Value,
}

fn call(c: &RawToolCall) -> Call<'_> {
    Call { function: CallFunction { arguments: &c.arguments, name: &c.name }, id: &c.id, kind: "function" }
}

fn message(m: &ChatMessage) -> Message<'_> {
    match m {
        ChatMessage::System(text) => Message::Plain { content: Some(text), role: "system" },
        ChatMessage::User(text) => Message::Plain { content: Some(text), role: "user" },
        // An assistant turn without calls always has a content: OpenAI
        // refuses `null` there (an empty answer shown back in a repair).
        ChatMessage::Assistant { content, tool_calls, .. } if tool_calls.is_empty() => {
            Message::Plain { content: Some(content.as_deref().unwrap_or("")), role: "assistant" }
        }
        ChatMessage::Assistant { content, tool_calls, .. } => Message::Calls {
            content: content.as_deref(),
            role: "assistant",
            tool_calls: tool_calls.iter().map(call).collect(),
        },
        ChatMessage::Tool { call_id, content } => Message::Tool { content, role: "tool", tool_call_id: call_id },
    }
}

/// The `tools` array of a request, serialised (see [`super::ToolTable`]).
pub fn tools_json(specs: &[libos_tools::ToolSpec]) -> Vec<u8> {
    let tools: Vec<Tool<'_>> = specs
        .iter()
        .map(|t| Tool {
            function: ToolFunction { description: &t.description, name: t.name.as_str(), parameters: &t.parameters },
            kind: "function",
        })
        .collect();
    // Serialising borrowed strings and `Value`s cannot fail.
    serde_json::to_vec(&tools).unwrap_or_default()
}

/// Writes the body: keys in sorted order, the tools array from the table's
/// cached JSON.
fn write_body(out: &mut impl Write, request: &ChatRequest, model: &str) -> std::io::Result<()> {
    let messages: Vec<Message<'_>> = request.messages.iter().map(message).collect();
    out.write_all(b"{\"messages\":")?;
    serde_json::to_writer(&mut *out, &messages)?;
    out.write_all(b",\"model\":")?;
    serde_json::to_writer(&mut *out, model)?;
    out.write_all(b",\"tool_choice\":\"auto\",\"tools\":")?;
    out.write_all(request.tools.json())?;
    out.write_all(b"}")
}

/// The full request body for `model`, as bytes to send.
pub fn request_body(request: &ChatRequest, model: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8192);
    // Writing into a Vec cannot fail.
    let _ = write_body(&mut out, request, model);
    out
}

/// How a tool call is written as text in `schema` and `text` modes.
pub fn call_text(name: &str, arguments: &str) -> String {
    let args = serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| Value::String(arguments.to_string()));
    format!("{{\"tool\": {}, \"args\": {args}}}", Value::String(name.to_string()))
}

/// The conversation as `schema` and `text` modes send it: calls as text,
/// results as user turns, the tools and the answer's format in the system message.
pub(crate) fn text_messages(request: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(request.messages.len());
    let mut names: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for m in &request.messages {
        let (role, content) = match m {
            ChatMessage::System(text) => ("system", format!("{text}\n\n{}", request.tools.described())),
            ChatMessage::User(text) => ("user", text.clone()),
            ChatMessage::Assistant { content, tool_calls, .. } => {
                let mut text = content.clone().unwrap_or_default();
                for c in tool_calls {
                    names.insert(&c.id, &c.name);
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&call_text(&c.name, &c.arguments));
                }
                ("assistant", text)
            }
            ChatMessage::Tool { call_id, content } => {
                let tool = names.get(call_id.as_str()).copied().unwrap_or("the tool");
                ("user", format!("Result of {tool}:\n{content}"))
            }
        };
        out.push(serde_json::json!({"role": role, "content": content}));
    }
    out
}

/// The conversation as `schema` and `text` modes send it, with the system
/// messages apart (the Messages and Responses APIs take them as a field):
/// the system texts, and the other turns as (role, text).
pub(crate) fn text_turns(request: &ChatRequest) -> (Vec<String>, Vec<(String, String)>) {
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for m in text_messages(request) {
        let role = m["role"].as_str().unwrap_or("user").to_string();
        let content = m["content"].as_str().unwrap_or("").to_string();
        if role == "system" {
            system.push(content);
        } else {
            turns.push((role, content));
        }
    }
    (system, turns)
}

/// The body sent for `model` in `mode`: the conversation, the mode's
/// fields, then the sampling settings (`extra_body` last, its keys win).
/// `native_choice`: send `tool_choice: "required"` and
/// `parallel_tool_calls: false` (a server that refused them gets `auto`).
pub fn send_body(
    request: &ChatRequest,
    model: &str,
    mode: CallMode,
    sampling: &Sampling,
    native_choice: bool,
) -> Vec<u8> {
    let mut fields = sampling.fields();
    let mut out = Vec::with_capacity(8192);
    out.extend_from_slice(b"{\"model\":");
    let _ = serde_json::to_writer(&mut out, model);
    out.extend_from_slice(b",\"messages\":");
    match mode {
        CallMode::Native => {
            let messages: Vec<Message<'_>> = request.messages.iter().map(message).collect();
            let _ = serde_json::to_writer(&mut out, &messages);
            if !fields.contains_key("tools") {
                out.extend_from_slice(b",\"tools\":");
                out.extend_from_slice(request.tools.json());
            }
            if native_choice {
                fields.entry("tool_choice").or_insert_with(|| "required".into());
                fields.entry("parallel_tool_calls").or_insert(Value::Bool(false));
            } else {
                fields.entry("tool_choice").or_insert_with(|| "auto".into());
            }
        }
        CallMode::Schema | CallMode::Text => {
            let _ = serde_json::to_writer(&mut out, &text_messages(request));
            if mode == CallMode::Schema && !fields.contains_key("response_format") {
                out.extend_from_slice(b",\"response_format\":");
                out.extend_from_slice(request.tools.response_format());
            }
        }
    }
    for (k, v) in &fields {
        if k == "model" || k == "messages" {
            continue;
        }
        out.push(b',');
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, v);
    }
    out.push(b'}');
    out
}

/// Keywords llama.cpp's JSON-schema-to-grammar converter (and most
/// servers' constrained decoders) understand. A tool whose schema uses
/// another one is offered with `args: {"type": "object"}` in the union:
/// decoding still yields one call to a known tool, and the arguments are
/// validated against the full schema after the answer.
const GRAMMAR_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "$defs",
    "definitions",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "description",
    "title",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "nullable",
];

/// The first keyword of `schema` outside `GRAMMAR_KEYWORDS`, if any.
pub fn unsupported_keyword(schema: &Value) -> Option<String> {
    let Value::Object(obj) = schema else { return None };
    for (k, v) in obj {
        if !GRAMMAR_KEYWORDS.contains(&k.as_str()) {
            return Some(k.clone());
        }
        let found = match k.as_str() {
            "properties" | "$defs" | "definitions" => {
                v.as_object().and_then(|m| m.values().find_map(unsupported_keyword))
            }
            "items" | "additionalProperties" => unsupported_keyword(v),
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                v.as_array().and_then(|a| a.iter().find_map(unsupported_keyword))
            }
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The named JSON schema of `schema` mode for these tools (the members
/// `name`, `strict` and `schema`, which [`chat_format`] and [`text_format`]
/// wrap), and the tools whose argument schemas had to be loosened (with
/// the keyword why).
pub fn response_format(specs: &[libos_tools::ToolSpec]) -> (Vec<u8>, Vec<(String, String)>) {
    let mut loosened = Vec::new();
    let mut branches = Vec::with_capacity(specs.len());
    for t in specs {
        let args = match unsupported_keyword(&t.parameters) {
            None => ordered_schema(&t.parameters),
            Some(k) => {
                loosened.push((t.name.as_str().to_string(), k));
                r#"{"type":"object"}"#.to_string()
            }
        };
        // Written by hand so that `tool` comes before `args`: decoders
        // generate properties in order, and the model should choose the
        // tool before writing its arguments.
        branches.push(format!(
            r#"{{"type":"object","properties":{{"tool":{{"const":{}}},"args":{args}}},"required":["tool","args"],"additionalProperties":false}}"#,
            Value::String(t.name.as_str().to_string())
        ));
    }
    let format = format!(r#""name":"tool_call","strict":true,"schema":{{"anyOf":[{}]}}"#, branches.join(","));
    (format.into_bytes(), loosened)
}

/// The Chat Completions `response_format` of a [`response_format`] schema.
pub fn chat_format(format: &[u8]) -> Vec<u8> {
    [br#"{"type":"json_schema","json_schema":{"#.as_slice(), format, b"}}"].concat()
}

/// The Responses API's `text.format` of a [`response_format`] schema.
pub fn text_format(format: &[u8]) -> Vec<u8> {
    [br#"{"type":"json_schema","#.as_slice(), format, b"}"].concat()
}

/// An argument schema as JSON with its `properties` in the order of its
/// `required` list (the optional ones after): decoders generate properties
/// in the order given, and a model writes `path` before `content` far
/// more reliably than in the alphabetical order of a JSON map.
fn ordered_schema(schema: &Value) -> String {
    let Value::Object(obj) = schema else { return schema.to_string() };
    let Some(Value::Object(props)) = obj.get("properties") else { return schema.to_string() };
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<&str> = required.iter().copied().filter(|n| props.contains_key(*n)).collect();
    names.extend(props.keys().map(String::as_str).filter(|n| !required.contains(n)));
    let props: Vec<String> = names
        .iter()
        .filter_map(|n| props.get(*n).map(|v| format!("{}:{v}", Value::String((*n).to_string()))))
        .collect();
    let mut parts = vec![format!("\"properties\":{{{}}}", props.join(","))];
    parts.extend(
        obj.iter().filter(|(k, _)| *k != "properties").map(|(k, v)| format!("{}:{v}", Value::String(k.clone()))),
    );
    format!("{{{}}}", parts.join(","))
}

/// The tools as `schema` and `text` modes describe them in the system
/// message: one line each (name, arguments, what it does), and the format.
pub fn describe_tools(specs: &[libos_tools::ToolSpec]) -> String {
    let mut out = String::from(
        "Answer with exactly one JSON object and nothing else: {\"tool\": NAME, \"args\": {ARGUMENTS}}. The tools:",
    );
    for t in specs {
        let props = t.parameters.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = t
            .parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Required arguments first, in their schema's order, then the optional ones.
        let mut names: Vec<&str> = required.clone();
        names.extend(props.into_iter().flat_map(|p| p.keys()).map(String::as_str).filter(|n| !required.contains(n)));
        let args: Vec<String> = names
            .iter()
            .map(|name| {
                let schema = props.and_then(|p| p.get(*name));
                let ty = schema.and_then(|s| s.get("type")).and_then(Value::as_str).unwrap_or("any");
                let opt = if required.contains(name) { "" } else { "?" };
                format!("{name}{opt}: {ty}")
            })
            .collect();
        let what = t.description.lines().next().unwrap_or("").trim();
        out.push_str(&format!("\n- {}({}): {what}", t.name.as_str(), args.join(", ")));
    }
    out
}

/// Hashes and counts bytes as the serialiser writes them.
struct HashWriter {
    hasher: Sha256,
    len: u64,
}

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// sha256 (hex) and size of the request's canonical body, model name excluded.
pub fn request_digest(request: &ChatRequest) -> (String, u64) {
    let mut w = std::io::BufWriter::with_capacity(8192, HashWriter { hasher: Sha256::new(), len: 0 });
    // Writing into a hasher cannot fail.
    let _ = write_body(&mut w, request, "");
    let w = w.into_inner().unwrap_or_else(|e| e.into_inner().into_parts().0);
    (hex::encode(w.hasher.finalize()), w.len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RequestMeta;

    /// The digest is of exactly the bytes sent (with an empty model name),
    /// and the bytes are the sorted-key JSON the previous `Value` form produced.
    #[test]
    fn digest_is_of_the_sent_bytes() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::System("sys".into()),
                ChatMessage::User("goal".into()),
                ChatMessage::Assistant {
                    content: None,
                    tool_calls: vec![RawToolCall { id: "c1".into(), name: "now".into(), arguments: "{}".into() }],
                    carry: None,
                },
                ChatMessage::Tool { call_id: "c1".into(), content: "12:00".into() },
            ],
            tools: crate::ToolTable::shared(
                libos_tools::Registry::builtin().table(&[libos_tools::ToolName::builtin("now")]).unwrap().specs(),
            ),
            meta: RequestMeta {
                pid: libos_kernel::Pid(1),
                image: "t".into(),
                goal: "g".into(),
                quantum: 1,
                call_index: 0,
            },
        };
        let bytes = request_body(&request, "");
        let (digest, len) = request_digest(&request);
        assert_eq!(digest, libos_kernel::audit::sha256_hex(&bytes));
        assert_eq!(len, bytes.len() as u64);
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), value.to_string());
    }
}
