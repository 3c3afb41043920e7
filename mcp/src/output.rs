//! A tool's result as the model sees it: text, bounded like other tool
//! results.
//!
//! Text blocks are shown as they are, one after another. Images, audio and
//! binary resources are shown as a notice of their type and size (their
//! bytes are not for a text model). Embedded text resources are shown with
//! their URI. Structured content is kept as JSON beside the text; it is
//! shown only when the server gave no text (servers that return structured
//! content should also give it as text, and most do). `isError` is kept.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::Value;

/// Bytes of a result's text kept.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// A tool's result.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// What the model sees (at most [`MAX_RESULT_BYTES`] and a notice).
    pub text: String,
    /// The structured content, if the server gave any.
    pub structured: Option<Value>,
    /// Whether the server said the call failed (`isError`).
    pub is_error: bool,
}

/// Bytes of base64 `data` once decoded (near enough for a notice).
fn decoded_len(data: &str) -> usize {
    let padding = data.bytes().rev().take_while(|b| *b == b'=').count();
    (data.len() / 4 * 3).saturating_sub(padding)
}

impl CallOutput {
    pub(crate) fn from_wire(r: CallToolResult) -> CallOutput {
        let mut parts: Vec<String> = Vec::new();
        for block in &r.content {
            parts.push(match block {
                ContentBlock::Text(t) => t.text.clone(),
                ContentBlock::Image(i) => format!("[image: {}, {} bytes]", i.mime_type, decoded_len(&i.data)),
                ContentBlock::Audio(a) => format!("[audio: {}, {} bytes]", a.mime_type, decoded_len(&a.data)),
                ContentBlock::Resource(e) => match &e.resource {
                    ResourceContents::TextResourceContents { uri, text, .. } => format!("[resource {uri}]\n{text}"),
                    ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => format!(
                        "[resource {uri}: {}, {} bytes]",
                        mime_type.as_deref().unwrap_or("application/octet-stream"),
                        decoded_len(blob)
                    ),
                    _ => "[a resource of a kind libos does not show]".to_string(),
                },
                ContentBlock::ResourceLink(l) => format!("[resource link: {}]", l.uri),
                _ => "[content of a kind libos does not show]".to_string(),
            });
        }
        let has_text = r.content.iter().any(|b| matches!(b, ContentBlock::Text(_)));
        if !has_text && let Some(s) = &r.structured_content {
            parts.push(s.to_string());
        }
        CallOutput {
            text: bound(parts.join("\n")),
            structured: r.structured_content,
            is_error: r.is_error == Some(true),
        }
    }
}

/// `text` cut to [`MAX_RESULT_BYTES`] (on a character boundary), with a notice.
pub fn bound(text: String) -> String {
    if text.len() <= MAX_RESULT_BYTES {
        return text;
    }
    let mut cut = MAX_RESULT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\n[... result cut: {} bytes, the first {cut} shown]", &text[..cut], text.len())
}
