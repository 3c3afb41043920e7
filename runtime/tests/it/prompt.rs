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
    let request = prompt::build(image, &process, &recent, 1, &inbox, 3, 4);
    let rendered: Vec<String> = request
        .messages
        .iter()
        .map(|m| match m {
            ChatMessage::System(t) => format!("[system]\n{t}"),
            ChatMessage::User(t) => format!("[user]\n{t}"),
            ChatMessage::Assistant { content, tool_calls } => format!(
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
    let tools: Vec<&str> = request.tools.iter().map(|t| t.name).collect();
    insta::assert_snapshot!(format!("tools: {}\n\n{}", tools.join(", "), rendered.join("\n\n")));
}
