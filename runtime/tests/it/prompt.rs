//! The prompt a quantum sends, as a whole: identity, interrupts first, the
//! goal, the transcript window paired by call id, and the inbox notice.

use libos_images::ImageSet;
use libos_kernel::ipc::{Message, MessageKind};
use libos_kernel::{
    Actor, Generation, ImageDigest, InboxSummary, MsgId, Outcome, Pid, ProcState, ProcessInfo, Timestamp,
    ToolCallRecord, ToolResultRecord, TranscriptEntry, Usage,
};
use libos_runtime::ChatMessage;
use libos_runtime::prompt;

fn entry(quantum: u64, tool: &str, args: &str, outcome: Outcome, result: &str) -> TranscriptEntry {
    TranscriptEntry {
        quantum,
        call: ToolCallRecord {
            call_id: format!("call_{quantum}"),
            tool: tool.into(),
            args: args.into(),
            rationale: (quantum == 2).then(|| "Check what is there first.".to_string()),
            carry: None,
        },
        result: ToolResultRecord { outcome, content: result.into() },
        at: Timestamp(0),
    }
}

#[test]
fn the_prompt_puts_interrupts_first_and_pairs_calls_with_results() {
    let images = ImageSet::shipped().unwrap();
    let image = images.get("worker").unwrap();
    let process = ProcessInfo {
        pid: Pid(7),
        ppid: Some(Pid(3)),
        image: "worker".into(),
        image_digest: ImageDigest("d".into()),
        goal: "Summarise docs/ and report to your parent".into(),
        workspace: "/work".into(),
        state: ProcState::Runnable { not_before: None },
        priority: 0,
        generation: Generation(4),
        usage: Usage::default(),
        budget: libos_kernel::budget::Budget::unlimited(),
        reserved: [0; 8],
        children_spent: [0; 8],
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    let recent = vec![
        entry(2, "list_dir", r#"{"path":"docs"}"#, Outcome::Ok, "overview.md"),
        entry(3, "read_file", r#"{"path":"secrets/k"}"#, Outcome::Denied, "permission denied: read fs:secrets/k"),
    ];
    let inbox = InboxSummary {
        unread: 3,
        interrupts: vec![Message {
            id: MsgId(9),
            from: Actor::operator(),
            to: Pid(7),
            kind: MessageKind::Interrupt,
            channel: None,
            correlation_id: None,
            reply_to: None,
            body: "stop after docs/".into(),
            sent_at: Timestamp(0),
            read_at: None,
        }],
    };
    let request = prompt::build(
        image,
        &process,
        &libos_kernel::RecentHistory { full: recent, compact: Vec::new(), older: 1 },
        &[],
        &[],
        libos_runtime::ToolTable::shared(libos_tools::Registry::builtin().table(&image.tools).unwrap().specs()),
        &inbox,
        3,
        4,
        u64::from(image.context.token_budget),
    );
    let rendered: Vec<String> = request
        .messages
        .iter()
        .map(|m| match m {
            ChatMessage::System(t) => format!("[system]\n{t}"),
            ChatMessage::User(t) => format!("[user]\n{t}"),
            ChatMessage::Assistant { content, tool_calls, .. } => format!(
                "[assistant] {}\n{}",
                content.as_deref().unwrap_or("-"),
                tool_calls
                    .iter()
                    .map(|c| format!("{} {} {}", c.id, c.name, c.arguments))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            ChatMessage::Tool { call_id, content } => format!("[tool {call_id}]\n{content}"),
        })
        .collect();
    let tools: Vec<&str> = request.tools.iter().map(|t| t.name.as_str()).collect();
    insta::assert_snapshot!(format!("tools: {}\n\n{}", tools.join(", "), rendered.join("\n\n")));
}

#[test]
fn a_long_run_keeps_its_prompt_within_budget_with_pinned_memory_and_compacted_turns() {
    let images = ImageSet::shipped().unwrap();
    let mut image = images.get("assistant").unwrap().clone();
    image.context.token_budget = 2000;
    image.context.transcript_window = 6;
    image.tools.push(libos_tools::ToolName::builtin("memory_pin"));
    let process = ProcessInfo {
        pid: Pid(4),
        ppid: None,
        image: "assistant".into(),
        image_digest: ImageDigest("d".into()),
        goal: "Keep the changelog up to date".into(),
        workspace: "/work".into(),
        state: ProcState::Runnable { not_before: None },
        priority: 0,
        generation: Generation(90),
        usage: Usage::default(),
        budget: libos_kernel::budget::Budget::unlimited(),
        reserved: [0; 8],
        children_spent: [0; 8],
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    // Thirty turns: small reads, and two large ones near the end; two
    // carry a reasoning model's state (sent back with their calls).
    let recent: Vec<TranscriptEntry> = (11..=40)
        .map(|q| {
            let big = q == 37 || q == 39;
            let result = if big { "x".repeat(3000) } else { format!("line {q}") };
            let mut e = entry(q, "read_file", &format!(r#"{{"path":"notes/{q}.md"}}"#), Outcome::Ok, &result);
            if q == 38 || q == 40 {
                e.call.carry = Some(format!(r#"[{{"type":"reasoning","encrypted_content":"{}"}}]"#, "r".repeat(2400)));
            }
            e
        })
        .collect();
    let object = |oid: i64, name: &str, content: String| libos_kernel::memory::Object {
        oid: libos_kernel::ObjectId(oid),
        namespace: "pid:4".into(),
        name: name.into(),
        kind: "note".into(),
        content,
        version: 2,
        owner: Pid(4),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    let pinned = vec![
        object(1, "style", "Use the imperative mood.".into()),
        object(2, "history", "h".repeat(4000)),
        object(3, "todo", "Release 1.2".into()),
    ];
    // Recalled: one also pinned (shown once), one that fits the recall
    // share (10% of 2,000 tokens), one that does not.
    let recalled = vec![
        prompt::Recalled { score: 5.0, object: object(3, "todo", "Release 1.2".into()) },
        prompt::Recalled { score: 4.0, object: object(5, "release-notes", "Ship on Friday.".into()) },
        prompt::Recalled { score: 3.0, object: object(6, "archive", "a".repeat(8000)) },
    ];
    let request = prompt::build(
        &image,
        &process,
        &libos_kernel::RecentHistory {
            full: recent[recent.len() - 6..].to_vec(),
            compact: recent[..recent.len() - 6]
                .iter()
                .map(|e| libos_kernel::CompactTurn {
                    quantum: e.quantum,
                    tool: e.call.tool.clone(),
                    args: e.call.args.clone(),
                    args_cut: false,
                    outcome: e.result.outcome,
                    result_bytes: e.result.content.len() as u64,
                })
                .collect(),
            older: 10,
        },
        &pinned,
        &recalled,
        libos_runtime::ToolTable::shared(libos_tools::Registry::builtin().table(&image.tools).unwrap().specs()),
        &InboxSummary::default(),
        40,
        41,
        u64::from(image.context.token_budget),
    );
    let total: u64 = request
        .messages
        .iter()
        .map(|m| match m {
            ChatMessage::System(t) | ChatMessage::User(t) => prompt::tokens(t),
            ChatMessage::Assistant { content, tool_calls, carry } => {
                tool_calls.iter().map(|c| prompt::tokens(&c.arguments)).sum::<u64>()
                    + content.as_deref().map_or(0, prompt::tokens)
                    + carry.as_deref().map_or(0, prompt::tokens)
            }
            ChatMessage::Tool { content, .. } => prompt::tokens(content),
        })
        .sum();
    assert!(total <= 2000, "the prompt is ~{total} tokens, over its budget of 2000");
    // Every shown call has its result right after it.
    for pair in request.messages[2..].chunks(2) {
        match pair {
            [ChatMessage::Assistant { tool_calls, .. }, ChatMessage::Tool { call_id, .. }] => {
                assert_eq!(&tool_calls[0].id, call_id)
            }
            other => panic!("a call without its result: {other:?}"),
        }
    }
    let ChatMessage::User(head) = &request.messages[1] else { panic!("no user message") };
    let shown: Vec<&str> = request
        .messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::Tool { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    insta::assert_snapshot!(format!("{head}\n\nshown in full: {}", shown.join(", ")));
}
