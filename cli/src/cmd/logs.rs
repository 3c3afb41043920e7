//! `libos logs`: a process's quanta as a readable transcript, every quantum
//! number it was leased for, with what the audit log says happened to each.
//!
//! Nearly everything here was written by a model or came back from a tool,
//! and is escaped as it is printed: the header, model names, errors and
//! call arguments as one line each; rationales, results and the final
//! result as indented blocks whose newlines stay.

use std::collections::BTreeMap;

use libos_console::wire;
use libos_kernel::audit::Outcome;
use libos_kernel::audit::trace::{LeaseEnd, LeaseTrace, Verdict};
use libos_kernel::{ModelCallOutcome, ModelCallRow, OpenMode, ProcState, ProcessInfo, TranscriptEntry};

use crate::args::LogsArgs;
use crate::ctx::{Ctx, parse_pid};
use crate::render::{self, block, one_line};

const MAX_RESULT_LINES: usize = 12;

/// One quantum's leases, model calls and tool calls.
#[derive(Default)]
pub(super) struct Quantum<'a> {
    pub(super) leases: Vec<&'a LeaseTrace>,
    pub(super) calls: Vec<&'a ModelCallRow>,
    pub(super) entries: Vec<&'a TranscriptEntry>,
}

/// Leases, model calls and tool calls by quantum number.
pub(super) fn quanta<'a>(
    leases: &'a [LeaseTrace],
    calls: &'a [ModelCallRow],
    entries: &'a [TranscriptEntry],
) -> BTreeMap<u64, Quantum<'a>> {
    let mut quanta: BTreeMap<u64, Quantum<'_>> = BTreeMap::new();
    for l in leases {
        quanta.entry(l.quantum).or_default().leases.push(l);
    }
    for c in calls {
        quanta.entry(c.quantum).or_default().calls.push(c);
    }
    for e in entries {
        quanta.entry(e.quantum).or_default().entries.push(e);
    }
    quanta
}

/// Which quantum re-ran the approved call of which.
pub(super) fn ran_in(leases: &[LeaseTrace]) -> BTreeMap<u64, u64> {
    leases.iter().filter_map(|l| l.resumed.map(|m| (m, l.quantum))).collect()
}

/// Prints the transcript of every quantum the process was leased for, in
/// order: model calls (retried attempts, rejections and errors), the
/// rationale, the tool call, how it parked and who decided it when, its
/// result, and for a quantum that committed nothing, why; with
/// `--follow`, goes on printing quanta as they end.
pub async fn run(ctx: &Ctx, args: &LogsArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    if args.follow {
        return super::logs_follow::run(&kernel, pid, args.json).await;
    }
    let process = kernel.process(pid)?;
    let calls = kernel.model_calls(pid)?;
    let (entries, _) = kernel.transcript(pid, None)?;
    let leases = kernel.leases(pid)?;
    if args.json {
        outln!("{}", render::json(&wire::transcript(&process, &calls, &entries, &leases))?);
        return Ok(());
    }
    let ran_in = ran_in(&leases);
    print_head(&process);
    for (n, q) in &quanta(&leases, &calls, &entries) {
        print_quantum(*n, q, ran_in.get(n).copied());
    }
    print_end(&process);
    Ok(())
}

/// The line naming the process.
pub(super) fn print_head(process: &ProcessInfo) {
    let head = format!("pid {} · {} · {} · goal: {}", process.pid, process.image, process.state, process.goal);
    outln!("{}", one_line(&head));
}

/// How the process ended (or where it is now), after a blank line.
pub(super) fn print_end(process: &ProcessInfo) {
    outln!();
    match &process.state {
        ProcState::Exited { code, result } => outln!("exited({code}): {}", indent(&block(result), "  ")),
        ProcState::Failed { kind, error } => outln!("failed({}): {}", kind.as_str(), one_line(error)),
        ProcState::Killed { by, reason } => outln!("killed by {by}: {}", one_line(reason)),
        other => outln!("now {}", one_line(&other.to_string())),
    }
}

/// One quantum, after a blank line (`ran_in`: the quantum that ran its approved call).
pub(super) fn print_quantum(n: u64, q: &Quantum<'_>, ran_in: Option<u64>) {
    outln!();
    // The lease that made the quantum's calls is its last; earlier ones
    // were given back before any model call, leaving it the number.
    let last = q.leases.last();
    match (q.calls.iter().rfind(|c| !c.record.is_attempt()).or(q.calls.last()), last) {
        (Some(c), _) => outln!(
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
        (None, Some(l)) => match l.resumed {
            Some(m) => outln!("quantum {n} · {} · no model call: it ran the approved call of quantum {m}", l.at),
            None => outln!("quantum {n} · {} · no model call", l.at),
        },
        (None, None) => outln!("quantum {n}"),
    }
    for l in q.leases.iter().take(q.leases.len().saturating_sub(1)) {
        outln!("  leased at {}: {}", l.at, ending(l.ended.as_ref()));
    }
    // How the call was made and how its answer ended (HTTP models only).
    if let Some(c) = q.calls.iter().rfind(|c| !c.record.is_attempt())
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
    let mut retries = 0;
    for c in &q.calls {
        let error = c.record.error.as_deref().unwrap_or("");
        match c.record.outcome {
            ModelCallOutcome::Ok => {}
            _ if c.record.is_attempt() => {
                retries += 1;
                let why = error.strip_prefix(libos_kernel::quantum::RETRIED).unwrap_or(error);
                outln!("  retried (attempt {retries}): {}", one_line(why));
            }
            ModelCallOutcome::Rejected => {
                outln!("  rejected (attempt {}): {}", c.record.attempt + 1, one_line(error));
            }
            ModelCallOutcome::Error => outln!("  model error: {}", one_line(error)),
        }
    }
    for e in &q.entries {
        if let Some(r) = &e.call.rationale {
            outln!("  says: {}", indent(&block(r), "        "));
        }
        outln!("  call: {} {}", one_line(&e.call.tool), render::json_args(&e.call.args));
        if let Some(l) = last {
            print_wait(l, ran_in);
        }
        outln!("  result ({}): {}", e.result.outcome, indent(&cap(&block(&e.result.content)), "          "));
    }
    // A call still parked has no transcript entry yet: say what it waits on.
    if q.entries.is_empty()
        && let Some(l) = last
    {
        print_wait(l, ran_in);
    }
    if let Some(l) = last {
        match &l.ended {
            Some(LeaseEnd::Committed | LeaseEnd::Exited | LeaseEnd::Parked(_)) => {}
            other => outln!("  {}", ending(other.as_ref())),
        }
    }
}

/// What a lease parked on, who decided it and when, and how the wait ended.
fn print_wait(l: &LeaseTrace, ran_in: Option<u64>) {
    let Some(LeaseEnd::Parked(on)) = &l.ended else { return };
    outln!("  parked: waiting ({})", one_line(on));
    for d in &l.decisions {
        let verb = match d.verdict {
            Verdict::Approve => "approved",
            Verdict::Deny => "denied",
            Verdict::Answer => "answered",
            Verdict::Cancel => "cancelled",
        };
        let by = d.by.to_string();
        if d.outcome != Outcome::Ok {
            let detail = d.detail.as_deref().unwrap_or("");
            let verdict = d.verdict.as_str();
            outln!(
                "  {verdict} by {} at {} refused (request {}): {}",
                one_line(&by),
                d.at,
                d.request,
                one_line(detail)
            );
            continue;
        }
        let then = match (d.verdict, ran_in) {
            (Verdict::Approve, Some(m)) => format!("; the call ran in quantum {m}"),
            (Verdict::Approve, None) => "; the call runs in the next quantum".to_string(),
            (Verdict::Deny | Verdict::Answer | Verdict::Cancel, _) => String::new(),
        };
        outln!("  {verb} by {} at {} (request {}){then}", one_line(&by), d.at, d.request);
    }
    if l.decisions.is_empty()
        && let Some(w) = &l.woke
    {
        outln!("  woke at {}: {}", w.at, one_line(&w.why));
    }
}

/// Why a lease committed nothing (or how it ended).
fn ending(end: Option<&LeaseEnd>) -> String {
    match end {
        None => "running".to_string(),
        Some(LeaseEnd::Committed) => "committed".to_string(),
        Some(LeaseEnd::Exited) => "exited".to_string(),
        Some(LeaseEnd::Parked(on)) => format!("parked ({})", one_line(on)),
        Some(LeaseEnd::BackedOff) => "the model call failed: backing off before the next quantum".to_string(),
        Some(LeaseEnd::Failed(error)) => format!("failed: {}", one_line(error)),
        Some(LeaseEnd::Killed(by)) => format!("killed by {} during the quantum", one_line(&by.to_string())),
        Some(LeaseEnd::Paused(by)) => {
            format!("paused by {} during the quantum: nothing was committed", one_line(&by.to_string()))
        }
        Some(LeaseEnd::Released) => "given back when its scheduler stopped: nothing was committed".to_string(),
        Some(LeaseEnd::Expired) => "its scheduler's lease lapsed and was recovered: nothing was committed".to_string(),
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
