//! The Chat Completions request body. Used to send requests and to digest
//! them, so the same request always has the same digest whichever model
//! answers it.
//!
//! The body is serialised straight from borrowed wire structs (no
//! intermediate `serde_json::Value`), and the digest hashes the bytes as they
//! are written: a quantum digests its request on every model call, and
//! building a tree of the tool schemas first was a third of its overhead.
//! Fields are declared in sorted order so the bytes are canonical JSON.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

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
        ChatMessage::Assistant { content, tool_calls } if tool_calls.is_empty() => {
            Message::Plain { content: content.as_deref(), role: "assistant" }
        }
        ChatMessage::Assistant { content, tool_calls } => Message::Calls {
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
