//! `libos ps`: the process table.

use libos_kernel::{OpenMode, ProcState, ProcessFilter};

use crate::args::PsArgs;
use crate::ctx::Ctx;
use crate::render::{age, clip, table, tokens};
use crate::wire;

/// Prints live processes (all with `--all`).
pub fn run(ctx: &Ctx, args: &PsArgs) -> anyhow::Result<()> {
    let kernel = ctx.open(OpenMode::Existing)?;
    let filter = if args.all { ProcessFilter::All } else { ProcessFilter::Live };
    let procs = kernel.processes(filter)?;
    if args.json {
        let list: Vec<_> = procs.iter().map(wire::process).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let rows = procs
        .iter()
        .map(|p| {
            vec![
                p.pid.to_string(),
                p.ppid.map_or_else(|| "-".to_string(), |x| x.to_string()),
                p.image.clone(),
                state_cell(&p.state),
                p.usage.quanta.to_string(),
                tokens(p),
                age(p.created_at),
                clip(&p.goal, 48),
            ]
        })
        .collect();
    println!("{}", table(&["PID", "PPID", "IMAGE", "STATE", "QUANTA", "TOKENS", "AGE", "GOAL"], rows));
    Ok(())
}

fn state_cell(s: &ProcState) -> String {
    match s {
        ProcState::Runnable { not_before: Some(_) } => "runnable(backoff)".to_string(),
        ProcState::Runnable { not_before: None } => "runnable".to_string(),
        ProcState::Running { .. } => "running".to_string(),
        ProcState::Exited { code, .. } => format!("exited({code})"),
        ProcState::Failed { kind, .. } => format!("failed({})", kind.as_str()),
        ProcState::Killed { .. } => "killed".to_string(),
    }
}
