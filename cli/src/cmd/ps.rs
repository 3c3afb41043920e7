//! `libos ps`: the process table.

use std::collections::{HashMap, HashSet};

use libos_kernel::{OpenMode, Pid, ProcState, ProcessFilter, ProcessInfo, WaitOn};

use libos_console::wire;

use crate::args::PsArgs;
use crate::ctx::Ctx;
use crate::render::{self, age, clip, quanta, table, tokens};

/// Prints live processes (all with `--all`), as a tree with `--tree`.
pub fn run(ctx: &Ctx, args: &PsArgs) -> anyhow::Result<()> {
    let kernel = ctx.open(OpenMode::Existing)?;
    let filter = if args.all { ProcessFilter::All } else { ProcessFilter::Live };
    let procs = kernel.processes(filter)?;
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
                if depth == 0 { p.pid.to_string() } else { format!("{}└ {}", "  ".repeat(depth - 1), p.pid) },
                p.ppid.map_or_else(|| "-".to_string(), |x| x.to_string()),
                p.image.clone(),
                state_cell(&p.state),
                quanta(p),
                tokens(p),
                age(p.created_at),
                clip(&p.goal, 48),
            ]
        })
        .collect();
    outln!("{}", table(&["PID", "PPID", "IMAGE", "STATE", "QUANTA", "TOKENS", "AGE", "GOAL"], rows));
    Ok(())
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
