//! Building a quantum's request from the image, the process, its memory
//! and its transcript, within a token budget: the image's, or less where
//! the model's context window (less its output reservation and the tools'
//! definitions) is smaller, or after the server said the prompt overflowed.
//!
//! Layout:
//! 1. system: the image's prompt and who the process is;
//! 2. user: unread interrupts first, then the goal, then the pinned memory
//!    objects that fit in a quarter of the token budget (whole objects, in
//!    pin order) and a notice naming those left out, then the compacted
//!    older turns;
//! 3. the recent transcript as assistant tool calls paired with their tool
//!    results, newest kept first while they fit the budget;
//! 4. user: an inbox notice when messages are waiting.
//!
//! Compaction: a turn (a tool call and its result, always kept together)
//! that does not fit in full becomes one line (`quantum N: tool(args…) ->
//! outcome, size`), the newest first, within an eighth of the budget and at
//! most [`COMPACT_LINES`]; older turns are only counted. A
//! single result larger than half the budget is cut, with a notice, so the
//! newest turn is always shown. Tokens are estimated at 4 bytes each.

use libos_images::Image;
use libos_kernel::memory::{Object, SearchQuery};
use libos_kernel::{CompactTurn, InboxSummary, Outcome, ProcessInfo, RecentHistory, TranscriptEntry};

use crate::model::{ChatMessage, ChatRequest, RawToolCall, RequestMeta};

/// Identical turns in a row after which the prompt says so.
pub const REPEAT_NOTICE: usize = 2;

/// Older turns shown as one compacted line each, at most.
pub const COMPACT_LINES: usize = 40;

/// Estimated tokens of a text.
pub fn tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

fn cut(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn result_text(entry: &TranscriptEntry) -> String {
    match entry.result.outcome {
        // These texts already say what happened (an unknown outcome, a
        // denial naming the grant or the human and their reason).
        Outcome::Ok | Outcome::Unknown | Outcome::Denied => entry.result.content.clone(),
        _ => format!("error: {}", entry.result.content),
    }
}

fn compact(entry: &TranscriptEntry) -> CompactTurn {
    let args = cut(&entry.call.args, 100);
    CompactTurn {
        quantum: entry.quantum,
        tool: entry.call.tool.clone(),
        args: args.to_string(),
        args_cut: args.len() < entry.call.args.len(),
        outcome: entry.result.outcome,
        result_bytes: entry.result.content.len() as u64,
    }
}

fn compact_line(turn: &CompactTurn) -> String {
    let args = cut(&turn.args, 80);
    let more = if turn.args_cut || args.len() < turn.args.len() { "…" } else { "" };
    format!(
        "quantum {}: {}({args}{more}) -> {}, {} bytes",
        turn.quantum,
        turn.tool,
        turn.outcome.as_str(),
        turn.result_bytes
    )
}

/// What a quantum recalls for an image that asks to (`context.recall`):
/// the words of its goal, then of its last result (a search takes at most
/// [`libos_kernel::memory::MAX_QUERY_WORDS`] of them).
pub fn recall_query(process: &ProcessInfo, history: &RecentHistory) -> Option<SearchQuery> {
    let mut text = process.goal.clone();
    if let Some(last) = history.full.last() {
        text.push(' ');
        text.push_str(&last.result.content);
    }
    SearchQuery::parse(&text).ok()
}

/// An object recalled into the prompt, with its search score.
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled {
    /// Its score in the search that found it.
    pub score: f64,
    /// The object.
    pub object: Object,
}

/// Builds the request for a quantum.
#[allow(clippy::too_many_arguments)]
pub fn build(
    image: &Image,
    process: &ProcessInfo,
    history: &RecentHistory,
    pinned: &[Object],
    recalled: &[Recalled],
    tools_offered: std::sync::Arc<crate::model::ToolTable>,
    inbox: &InboxSummary,
    call_index: u64,
    quantum: u64,
    budget: u64,
) -> ChatRequest {
    let tools: Vec<&str> = image.tools.iter().map(|t| t.as_str()).collect();
    let system = format!(
        "{}\n\nYou are process {}{} running image `{}` {}. Your tools: {}. Call exactly one tool per turn.",
        image.system_prompt,
        process.pid,
        process.ppid.map_or_else(String::new, |p| format!(" (child of process {p})")),
        image.name,
        image.version,
        tools.join(", ")
    );
    let mut user = String::new();
    for m in &inbox.interrupts {
        user.push_str(&format!("INTERRUPT {}\n\n", m.render()));
    }
    // A goal larger than half the budget is cut, with a notice (a small
    // model's context may be smaller than a goal a person pasted).
    let max_goal = (budget / 2 * 4) as usize;
    if process.goal.len() > max_goal {
        let kept = cut(&process.goal, max_goal);
        user.push_str(&format!(
            "Goal: {kept}\n[... the goal was cut to fit the model's context: {} bytes, {} shown]",
            process.goal.len(),
            kept.len()
        ));
    } else {
        user.push_str(&format!("Goal: {}", process.goal));
    }

    // Pinned memory: whole objects within a quarter of the budget.
    let mut left_out = Vec::new();
    let mut memory = String::new();
    let mut memory_tokens = 0;
    for o in pinned {
        let block =
            format!("\n\n[memory {} `{}/{}` ({}, v{})]\n{}", o.oid, o.namespace, o.name, o.kind, o.version, o.content);
        let t = tokens(&block);
        if memory_tokens + t <= budget / 4 {
            memory.push_str(&block);
            memory_tokens += t;
        } else {
            left_out.push(format!("{} `{}` (~{t} tokens)", o.oid, o.name));
        }
    }
    if !memory.is_empty() {
        user.push_str("\n\nPinned memory:");
        user.push_str(&memory);
    }
    if !left_out.is_empty() {
        user.push_str(&format!(
            "\n\n[Pinned objects left out for the token budget: {}. Read them with memory_read.]",
            left_out.join(", ")
        ));
    }

    // Recalled memory: the best matches of the goal and the last result,
    // whole objects within the image's share of the budget, best first;
    // what does not fit is named, to be read with memory_read.
    let share = budget * u64::from(image.context.recall_percent) / 100;
    let (mut recall, mut recall_tokens, mut not_shown) = (String::new(), 0, Vec::new());
    for r in recalled.iter().filter(|r| !pinned.iter().any(|p| p.oid == r.object.oid)) {
        let o = &r.object;
        let block = format!(
            "\n\n[memory {} `{}/{}` ({}, v{}, score {:.2})]\n{}",
            o.oid, o.namespace, o.name, o.kind, o.version, r.score, o.content
        );
        let t = tokens(&block);
        if recall_tokens + t <= share {
            recall.push_str(&block);
            recall_tokens += t;
        } else {
            not_shown.push(format!("{} `{}` (~{t} tokens)", o.oid, o.name));
        }
    }
    if !recall.is_empty() {
        user.push_str("\n\nRecalled memory (objects matching your goal and last result):");
        user.push_str(&recall);
    }
    if !not_shown.is_empty() {
        user.push_str(&format!(
            "\n\n[Recalled objects left out for the token budget: {}. Read them with memory_read.]",
            not_shown.join(", ")
        ));
    }

    // Recent turns in full, newest first, while they fit; the rest compacted.
    // An eighth of the budget is kept for the compacted lines.
    let used = tokens(&system) + tokens(&user) + 200 + budget / 8;
    let mut room = budget.saturating_sub(used);
    let mut shown: Vec<(&TranscriptEntry, String)> = Vec::new();
    let mut first_shown = history.full.len();
    for (i, entry) in history.full.iter().enumerate().rev() {
        let mut result = result_text(entry);
        let max = (budget / 2 * 4) as usize;
        if result.len() > max {
            let kept = cut(&result, max).to_string();
            result = format!("{kept}\n[... cut: the result was {} bytes; {} shown]", result.len(), kept.len());
        }
        // What the turn sends: the call, its result, the model's text and
        // any provider state it carries (a reasoning model's items).
        let said = entry.call.rationale.as_deref().map_or(0, tokens) + entry.call.carry.as_deref().map_or(0, tokens);
        let t = tokens(&result) + tokens(&entry.call.args) + said + 20;
        // The newest turn is always shown; others only if they fit.
        if t > room && !shown.is_empty() {
            break;
        }
        room = room.saturating_sub(t);
        shown.push((entry, result));
        first_shown = i;
    }
    shown.reverse();
    let turns: Vec<CompactTurn> =
        history.compact.iter().cloned().chain(history.full[..first_shown].iter().map(compact)).collect();
    if !turns.is_empty() || history.older > 0 {
        // The newest compacted lines, within their eighth of the budget.
        let mut lines: Vec<String> = Vec::new();
        let mut line_tokens = 0;
        for turn in turns.iter().rev().take(COMPACT_LINES) {
            let line = compact_line(turn);
            line_tokens += tokens(&line) + 1;
            if line_tokens > budget / 8 {
                break;
            }
            lines.push(line);
        }
        lines.reverse();
        let not_listed = history.older + (turns.len() - lines.len()) as u64;
        let mut text = String::from("\n\n[Earlier turns, compacted");
        if not_listed > 0 {
            text.push_str(&format!(
                "; {not_listed} older turn{} not listed",
                if not_listed == 1 { " is" } else { "s are" }
            ));
        }
        text.push(']');
        for l in lines {
            text.push('\n');
            text.push_str(&l);
        }
        user.push_str(&text);
    }

    let mut messages = Vec::with_capacity(3 + shown.len() * 2);
    messages.push(ChatMessage::System(system));
    messages.push(ChatMessage::User(user));
    for (entry, result) in shown {
        messages.push(ChatMessage::Assistant {
            content: entry.call.rationale.clone(),
            tool_calls: vec![RawToolCall {
                id: entry.call.call_id.clone(),
                name: entry.call.tool.clone(),
                arguments: entry.call.args.clone(),
            }],
            carry: entry.call.carry.clone(),
        });
        messages.push(ChatMessage::Tool { call_id: entry.call.call_id.clone(), content: result });
    }
    // A model that repeats itself (small ones do) is told so: the same
    // call with the same result, several turns in a row.
    let repeats = history
        .full
        .iter()
        .rev()
        .take_while(|e| {
            history.full.last().is_some_and(|l| {
                l.call.tool == e.call.tool && l.call.args == e.call.args && l.result.content == e.result.content
            })
        })
        .count();
    if repeats >= REPEAT_NOTICE {
        messages.push(ChatMessage::User(format!(
            "You made the same call {repeats} times in a row with the same result. Do not repeat it: take the next \
             step of the goal, or call `exit` with the result if the goal is met."
        )));
    }
    let waiting = inbox.unread.saturating_sub(inbox.interrupts.len() as u64);
    if waiting > 0 {
        let how = if image.tools.iter().any(|t| t == "read" || t == "receive") {
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
        tools: tools_offered,
        meta: RequestMeta {
            pid: process.pid,
            image: image.name.clone(),
            goal: process.goal.clone(),
            quantum,
            call_index,
        },
    }
}
