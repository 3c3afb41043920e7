//! Finding exactly one tool call in a model's answer: native `tool_calls`
//! first, then a JSON object in the text (`{"tool": ..., "args": {...}}`,
//! `{"name": ..., "arguments": ...}`, possibly in a code fence).
//!
//! Only an object shaped as a call counts: both keys of one of the two
//! shapes, and besides them at most `id` and `type`. An object that merely
//! has a `name` (a tool's schema echoed back, `{"name", "description",
//! "parameters"}`) is not a call.

use libos_tools::{RejectReason, ToolName};

use crate::model::{ChatResponse, RawToolCall};

/// The one call found, with the text around it (the rationale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The call (id, name, arguments text).
    pub call: RawToolCall,
    /// The model's text beside the call.
    pub rationale: Option<String>,
}

/// Extracts exactly one call or says why not.
pub fn one_call(resp: &ChatResponse, allowed: &[ToolName], fallback_id: &str) -> Result<Found, RejectReason> {
    match resp.tool_calls.len() {
        1 => {
            let mut call = resp.tool_calls[0].clone();
            if call.id.is_empty() {
                call.id = fallback_id.to_string();
            }
            return Ok(Found { call, rationale: resp.content.clone() });
        }
        0 => {}
        count => return Err(RejectReason::TooMany { count }),
    }
    let no_call =
        || RejectReason::NoCall { available: allowed.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ") };
    let text = resp.content.as_deref().ok_or_else(no_call)?;
    let mut found: Vec<(usize, usize, RawToolCall)> = Vec::new();
    // Every `{` may start a call; one that breaks is retried from the next
    // `{`. Text crafted so that many of them run far before breaking would
    // make that quadratic: the bytes read by failed attempts are counted,
    // and past eight times the text's size (plus a megabyte) the search gives up.
    // Where each line starts, to place an error; built on the first failure.
    let mut newlines: Option<Vec<usize>> = None;
    let budget = text.len().saturating_mul(8).saturating_add(1 << 20);
    let mut spent = 0usize;
    let mut i = 0;
    while let Some(off) = text[i..].find('{') {
        let start = i + off;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(value)) => {
                let end = start + stream.byte_offset();
                if let Some(call) = call_from_json(&value, fallback_id) {
                    found.push((start, end, call));
                }
                i = end;
            }
            Some(Err(e)) => {
                let lines = newlines.get_or_insert_with(|| text.match_indices('\n').map(|(i, _)| i).collect());
                spent = spent.saturating_add(error_offset(lines, start, &e).saturating_sub(start));
                if spent > budget {
                    return Err(RejectReason::Unsearchable { bytes: text.len() });
                }
                i = start + 1;
            }
            None => i = start + 1,
        }
    }
    match found.len() {
        0 => Err(no_call()),
        1 => {
            let (start, end, call) = found.remove(0);
            let rest = format!("{}{}", &text[..start], &text[end..]);
            let rest = rest.replace("```json", "").replace("```", "");
            let rest = rest.trim();
            Ok(Found { call, rationale: (!rest.is_empty()).then(|| rest.to_string()) })
        }
        count => Err(RejectReason::TooMany { count }),
    }
}

/// Where in the whole text a parse that began at `start` failed: serde
/// reports a line and a byte column, counted from `start`.
fn error_offset(newlines: &[usize], start: usize, e: &serde_json::Error) -> usize {
    if e.line() <= 1 {
        return start + e.column();
    }
    let first = newlines.partition_point(|&n| n < start);
    newlines.get(first + e.line() - 2).map_or(start, |&n| n + e.column())
}

fn call_from_json(v: &serde_json::Value, id: &str) -> Option<RawToolCall> {
    let obj = v.as_object()?;
    let (name_key, args_key) = if obj.contains_key("tool") { ("tool", "args") } else { ("name", "arguments") };
    let shaped = obj.keys().all(|k| k == name_key || k == args_key || k == "id" || k == "type");
    if !shaped || !obj.contains_key(args_key) {
        return None;
    }
    let name = obj.get(name_key)?.as_str()?;
    let arguments = match obj.get(args_key) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    Some(RawToolCall { id: id.to_string(), name: name.to_string(), arguments })
}
