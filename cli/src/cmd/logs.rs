//! `libos logs`: a process's quanta as a readable transcript.

use std::collections::BTreeMap;

use libos_console::wire;
use libos_kernel::{ModelCallOutcome, ModelCallRow, OpenMode, ProcState, TranscriptEntry};

use crate::args::LogsArgs;
use crate::ctx::{Ctx, parse_pid};

const MAX_RESULT_LINES: usize = 12;

#[derive(Default)]
struct Quantum<'a> {
    calls: Vec<&'a ModelCallRow>,
    entries: Vec<&'a TranscriptEntry>,
}

/// Prints the transcript of every quantum: model calls (with rejections and
/// errors), the rationale, the tool call and its result.
pub fn run(ctx: &Ctx, args: &LogsArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let process = kernel.process(pid)?;
    let calls = kernel.model_calls(pid)?;
    let (entries, _) = kernel.transcript(pid, None)?;
    let mut quanta: BTreeMap<u64, Quantum<'_>> = BTreeMap::new();
    for c in &calls {
        quanta.entry(c.quantum).or_default().calls.push(c);
    }
    for e in &entries {
        quanta.entry(e.quantum).or_default().entries.push(e);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&wire::transcript(&process, &calls, &entries))?);
        return Ok(());
    }
    println!("pid {} · {} · {} · goal: {}", process.pid, process.image, process.state, process.goal);
    for (n, q) in &quanta {
        println!();
        let head = q.calls.last();
        match head {
            Some(c) => println!(
                "quantum {n} · {} · {} (profile {}) · {} ms · tokens {}{}/{}",
                c.at,
                if c.record.model.is_empty() { "?" } else { &c.record.model },
                c.record.profile,
                c.record.latency.as_millis(),
                if c.record.usage.estimated { "~" } else { "" },
                c.record.usage.input,
                c.record.usage.output
            ),
            None => println!("quantum {n}"),
        }
        for c in &q.calls {
            match c.record.outcome {
                ModelCallOutcome::Ok => {}
                ModelCallOutcome::Rejected => println!(
                    "  rejected (attempt {}): {}",
                    c.record.attempt + 1,
                    c.record.error.as_deref().unwrap_or("")
                ),
                ModelCallOutcome::Error => {
                    println!("  model error: {}", c.record.error.as_deref().unwrap_or(""));
                }
            }
        }
        for e in &q.entries {
            if let Some(r) = &e.call.rationale {
                println!("  says: {}", indent(r, "        "));
            }
            println!("  call: {} {}", e.call.tool, e.call.args);
            println!("  result ({}): {}", e.result.outcome, indent(&cap(&e.result.content), "          "));
        }
    }
    println!();
    match &process.state {
        ProcState::Exited { code, result } => println!("exited({code}): {result}"),
        ProcState::Failed { kind, error } => println!("failed({}): {error}", kind.as_str()),
        ProcState::Killed { by, reason } => println!("killed by {by}: {reason}"),
        other => println!("now {other}"),
    }
    Ok(())
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
