//! `libos ps`: the process table.

use std::collections::{HashMap, HashSet};

use libos_kernel::{OpenMode, Pid, ProcState, ProcessFilter, ProcessInfo, WaitOn};

use libos_console::wire;

use crate::args::PsArgs;
use crate::ctx::{Ctx, parse_pid};
use crate::render::{self, Cell, Flex, Tone, age, quanta, table_of, tokens};

/// Prints live processes (all with `--all`, or when `--state` names an
/// ended state), filtered, as a tree with `--tree`, or their pids with `-q`.
pub fn run(ctx: &Ctx, args: &PsArgs) -> anyhow::Result<()> {
    let parent = args.parent.as_deref().map(parse_pid).transpose()?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let ended = args.state.iter().any(|s| matches!(s.as_str(), "exited" | "failed" | "killed"));
    let filter = if args.all || ended { ProcessFilter::All } else { ProcessFilter::Live };
    let procs: Vec<ProcessInfo> = kernel
        .processes(filter)?
        .into_iter()
        .filter(|p| args.state.is_empty() || args.state.iter().any(|s| s == p.state.name()))
        .filter(|p| args.image.as_ref().is_none_or(|i| *i == p.image))
        .filter(|p| parent.is_none_or(|pp| p.ppid == Some(pp)))
        .collect();
    if args.quiet {
        for p in &procs {
            outln!("{}", p.pid);
        }
        return Ok(());
    }
    if args.json {
        let list: Vec<_> = procs.iter().map(wire::process).collect();
        outln!("{}", render::json(&list)?);
        return Ok(());
    }
    let ordered: Vec<(usize, &ProcessInfo)> =
        if args.tree { tree_order(&procs) } else { procs.iter().map(|p| (0, p)).collect() };
    let rows = ordered
        .into_iter()
        .map(|(depth, p)| {
            vec![
                Cell::from(if depth == 0 {
                    p.pid.to_string()
                } else {
                    format!("{}└ {}", "  ".repeat(depth - 1), p.pid)
                }),
                p.ppid.map_or_else(|| "-".to_string(), |x| x.to_string()).into(),
                p.image.clone().into(),
                Cell::toned(state_cell(&p.state), Some(state_tone(&p.state))),
                quanta(p).into(),
                tokens(p).into(),
                age(p.created_at).into(),
                p.goal.clone().into(),
            ]
        })
        .collect();
    let flex = Flex { column: 7, piped: 48, wide: args.wide };
    outln!("{}", table_of(&["PID", "PPID", "IMAGE", "STATE", "QUANTA", "TOKENS", "AGE", "GOAL"], rows, Some(flex)));
    Ok(())
}

/// The state names `--state` takes.
pub const STATES: [&str; 7] = ["runnable", "running", "waiting", "paused", "exited", "failed", "killed"];

/// How a state is coloured on a terminal.
fn state_tone(s: &ProcState) -> Tone {
    match s {
        ProcState::Runnable { not_before: Some(_) } | ProcState::Waiting { .. } => Tone::Wait,
        ProcState::Runnable { not_before: None } | ProcState::Running { .. } => Tone::Good,
        ProcState::Paused { .. } => Tone::Held,
        ProcState::Exited { code: 0, .. } => Tone::Done,
        ProcState::Exited { .. } | ProcState::Failed { .. } | ProcState::Killed { .. } => Tone::Bad,
    }
}

/// Processes depth-first under their parents; a process whose parent is
/// not shown (ended, or detached) is a root.
fn tree_order(procs: &[ProcessInfo]) -> Vec<(usize, &ProcessInfo)> {
    let shown: HashSet<Pid> = procs.iter().map(|p| p.pid).collect();
    let mut kids: HashMap<Pid, Vec<&ProcessInfo>> = HashMap::new();
    let mut roots = Vec::new();
    for p in procs {
        match p.ppid.filter(|pp| shown.contains(pp)) {
            Some(pp) => kids.entry(pp).or_default().push(p),
            None => roots.push(p),
        }
    }
    let mut out = Vec::with_capacity(procs.len());
    let mut stack: Vec<(usize, &ProcessInfo)> = roots.into_iter().rev().map(|p| (0, p)).collect();
    while let Some((depth, p)) = stack.pop() {
        out.push((depth, p));
        if let Some(children) = kids.get(&p.pid) {
            stack.extend(children.iter().rev().map(|c| (depth + 1, *c)));
        }
    }
    out
}

fn wait_cell(on: &WaitOn) -> String {
    match on {
        WaitOn::Human(id) => format!("approval {id}"),
        WaitOn::Child(Some(p)) => format!("child {p}"),
        WaitOn::Child(None) => "any child".to_string(),
        WaitOn::Message(_) => "message".to_string(),
        WaitOn::Timer(_) => "timer".to_string(),
    }
}

fn state_cell(s: &ProcState) -> String {
    match s {
        ProcState::Runnable { not_before: Some(_) } => "runnable(backoff)".to_string(),
        ProcState::Runnable { not_before: None } => "runnable".to_string(),
        ProcState::Running { .. } => "running".to_string(),
        ProcState::Waiting { on } => format!("waiting({})", wait_cell(on)),
        ProcState::Paused { was } => format!("paused({})", state_cell(was)),
        ProcState::Exited { code, .. } => format!("exited({code})"),
        ProcState::Failed { kind, .. } => format!("failed({})", kind.as_str()),
        ProcState::Killed { .. } => "killed".to_string(),
    }
}
