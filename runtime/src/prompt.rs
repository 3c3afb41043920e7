//! Building a quantum's request from the image, the process and its transcript.
//!
//! Layout: a system message (the image's prompt plus what the process is), a
//! user message with unread interrupts first, then the goal (and how many
//! older turns are not shown), then the most recent transcript entries as
//! assistant tool calls paired with their tool results, and last an inbox
//! notice when messages are waiting. Only the process's own tools are offered.

use libos_images::Image;
use libos_kernel::{InboxSummary, Outcome, ProcessInfo, TranscriptEntry};
use libos_tools::ToolName;

use crate::model::{ChatMessage, ChatRequest, RawToolCall, RequestMeta};

/// Builds the request for a quantum. `omitted` is how many older transcript
/// entries are not in `recent`.
pub fn build(
    image: &Image,
    process: &ProcessInfo,
    recent: &[TranscriptEntry],
    omitted: u64,
    inbox: &InboxSummary,
    call_index: u64,
    quantum: u64,
) -> ChatRequest {
    let mut messages = Vec::with_capacity(2 + recent.len() * 2);
    let tools: Vec<&str> = image.tools.iter().map(|t| t.as_str()).collect();
    messages.push(ChatMessage::System(format!(
        "{}\n\nYou are process {}{} running image `{}` {}. Your tools: {}. Call exactly one tool per turn.",
        image.system_prompt,
        process.pid,
        process.ppid.map_or_else(String::new, |p| format!(" (child of process {p})")),
        image.name,
        image.version,
        tools.join(", ")
    )));
    let mut user = String::new();
    for m in &inbox.interrupts {
        user.push_str(&format!("INTERRUPT {}\n\n", m.render()));
    }
    user.push_str(&format!("Goal: {}", process.goal));
    if omitted > 0 {
        user.push_str(&format!(
            "\n\n[{omitted} earlier tool call{} not shown.]",
            if omitted == 1 { " and its result is" } else { "s and their results are" }
        ));
    }
    messages.push(ChatMessage::User(user));
    for entry in recent {
        messages.push(ChatMessage::Assistant {
            content: entry.call.rationale.clone(),
            tool_calls: vec![RawToolCall {
                id: entry.call.call_id.clone(),
                name: entry.call.tool.clone(),
                arguments: entry.call.args.clone(),
            }],
        });
        let content = match entry.result.outcome {
            // An unknown outcome's text already says what happened.
            // These texts already say what happened (an unknown outcome, a
            // denial naming the grant or the human and their reason).
            Outcome::Ok | Outcome::Unknown | Outcome::Denied => entry.result.content.clone(),
            _ => format!("error: {}", entry.result.content),
        };
        messages.push(ChatMessage::Tool { call_id: entry.call.call_id.clone(), content });
    }
    let waiting = inbox.unread.saturating_sub(inbox.interrupts.len() as u64);
    if waiting > 0 {
        let how = if image.tools.contains(&ToolName::Read) || image.tools.contains(&ToolName::Receive) {
            "use `read` or `receive` to take them"
        } else {
            "you have no tool to read them"
        };
        messages.push(ChatMessage::User(format!(
            "Inbox: {waiting} unread message{} ({how}).",
            if waiting == 1 { "" } else { "s" }
        )));
    }
    ChatRequest {
        messages,
        tools: image.tools.iter().copied().map(ToolName::spec).collect(),
        meta: RequestMeta {
            pid: process.pid,
            image: image.name.clone(),
            goal: process.goal.clone(),
            quantum,
            call_index,
        },
    }
}
