//! `libos logs`: a process's quanta as a readable transcript.
//!
//! Nearly everything here was written by a model or came back from a tool,
//! and is escaped as it is printed: the header, model names, errors and
//! call arguments as one line each; rationales, results and the final
//! result as indented blocks whose newlines stay.

use std::collections::BTreeMap;

use libos_console::wire;
use libos_kernel::{ModelCallOutcome, ModelCallRow, OpenMode, ProcState, ProcessInfo, TranscriptEntry};

use crate::args::LogsArgs;
use crate::ctx::{Ctx, parse_pid};
use crate::render::{self, block, one_line};

const MAX_RESULT_LINES: usize = 12;

/// One quantum's model calls and tool calls.
#[derive(Default)]
pub(super) struct Quantum<'a> {
    pub(super) calls: Vec<&'a ModelCallRow>,
    pub(super) entries: Vec<&'a TranscriptEntry>,
}

/// Model calls and tool calls by quantum number.
pub(super) fn quanta<'a>(calls: &'a [ModelCallRow], entries: &'a [TranscriptEntry]) -> BTreeMap<u64, Quantum<'a>> {
    let mut quanta: BTreeMap<u64, Quantum<'_>> = BTreeMap::new();
    for c in calls {
        quanta.entry(c.quantum).or_default().calls.push(c);
    }
    for e in entries {
        quanta.entry(e.quantum).or_default().entries.push(e);
    }
    quanta
}

/// Prints the transcript of every quantum: model calls (with rejections and
/// errors), the rationale, the tool call and its result; with `--follow`,
/// goes on printing quanta as they end.
pub async fn run(ctx: &Ctx, args: &LogsArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    if args.follow {
        return super::logs_follow::run(&kernel, pid, args.json).await;
    }
    let process = kernel.process(pid)?;
    let calls = kernel.model_calls(pid)?;
    let (entries, _) = kernel.transcript(pid, None)?;
    if args.json {
        outln!("{}", render::json(&wire::transcript(&process, &calls, &entries))?);
        return Ok(());
    }
    print_head(&process);
    for (n, q) in &quanta(&calls, &entries) {
        print_quantum(*n, q);
    }
    print_end(&process);
    Ok(())
}

/// The line naming the process.
pub(super) fn print_head(process: &ProcessInfo) {
    let head = format!("pid {} · {} · {} · goal: {}", process.pid, process.image, process.state, process.goal);
    outln!("{}", one_line(&head));
}

/// One quantum, after a blank line.
pub(super) fn print_quantum(n: u64, q: &Quantum<'_>) {
    outln!();
    let head = q.calls.last();
    match head {
        Some(c) => outln!(
            "quantum {n} · {} · {} (profile {}) · {} ms · tokens {}{}/{}",
            c.at,
            // The model name is whatever the provider answered.
            if c.record.model.is_empty() { "?".into() } else { one_line(&c.record.model) },
            one_line(&c.record.profile),
            c.record.latency.as_millis(),
            if c.record.usage.estimated { "~" } else { "" },
            c.record.usage.input,
            c.record.usage.output
        ),
        None => outln!("quantum {n}"),
    }
    // How the call was made and how its answer ended (HTTP models only).
    if let Some(c) = head
        && (c.record.detail.call_mode.is_some() || c.record.detail.sent.is_some())
    {
        let d = &c.record.detail;
        outln!(
            "  mode {} · finish {} · sent {}{}",
            one_line(d.call_mode.as_deref().unwrap_or("?")),
            one_line(d.finish_reason.as_deref().unwrap_or("-")),
            one_line(d.sent.as_deref().unwrap_or("-")),
            d.usage.as_deref().map_or_else(String::new, |u| format!(" · usage {}", one_line(u)))
        );
    }
    for c in &q.calls {
        match c.record.outcome {
            ModelCallOutcome::Ok => {}
            ModelCallOutcome::Rejected => outln!(
                "  rejected (attempt {}): {}",
                c.record.attempt + 1,
                one_line(c.record.error.as_deref().unwrap_or(""))
            ),
            ModelCallOutcome::Error => {
                outln!("  model error: {}", one_line(c.record.error.as_deref().unwrap_or("")));
            }
        }
    }
    for e in &q.entries {
        if let Some(r) = &e.call.rationale {
            outln!("  says: {}", indent(&block(r), "        "));
        }
        outln!("  call: {} {}", one_line(&e.call.tool), render::json_args(&e.call.args));
        outln!("  result ({}): {}", e.result.outcome, indent(&cap(&block(&e.result.content)), "          "));
    }
}

/// How the process ended, or where it is now, after a blank line.
pub(super) fn print_end(process: &ProcessInfo) {
    outln!();
    match &process.state {
        ProcState::Exited { code, result } => outln!("exited({code}): {}", indent(&block(result), "  ")),
        ProcState::Failed { kind, error } => outln!("failed({}): {}", kind.as_str(), one_line(error)),
        ProcState::Killed { by, reason } => outln!("killed by {by}: {}", one_line(reason)),
        other => outln!("now {}", one_line(&other.to_string())),
    }
}

fn cap(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= MAX_RESULT_LINES {
        return text.to_string();
    }
    format!("{}\n[{} more lines]", lines[..MAX_RESULT_LINES].join("\n"), lines.len() - MAX_RESULT_LINES)
}

fn indent(text: &str, pad: &str) -> String {
    text.lines().collect::<Vec<_>>().join(&format!("\n{pad}"))
}
