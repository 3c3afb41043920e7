//! `libos kill`, `libos pause`, `libos resume`, `libos renice`.

use libos_console::wire;
use libos_kernel::{Actor, OpenMode, Pid, ProcState};
use serde_json::json;

use crate::args::{KillArgs, PidArg, ReniceArgs};
use crate::ctx::{Ctx, parse_pid};
use crate::render::{self, one_line};

/// Kills a process (with `--tree`, its descendants too); a scheduler
/// running one cancels its quantum within its poll interval.
pub fn run(ctx: &Ctx, args: &KillArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let killed = kernel.kill_tree(pid, args.tree, Actor::operator(), &args.reason)?;
    if args.json {
        outln!("{}", render::json(&wire::killed(&killed))?);
        return Ok(());
    }
    let list: Vec<String> = killed.iter().map(ToString::to_string).collect();
    outln!("killed pid {}", list.join(", "));
    Ok(())
}

/// Changes a process's priority.
pub fn renice(ctx: &Ctx, args: &ReniceArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let old = kernel.renice(pid, args.priority, &Actor::operator())?;
    if args.json {
        let out = json!({"pid": pid.get(), "priority": args.priority, "previous": old});
        outln!("{}", render::json(&out)?);
        return Ok(());
    }
    outln!("pid {pid}: priority {old} -> {}", args.priority);
    Ok(())
}

/// Pauses a process.
pub fn pause(ctx: &Ctx, args: &PidArg) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let state = kernel.pause(pid, Actor::operator())?;
    print_state(pid, &state, args.json)
}

/// Resumes a paused process.
pub fn resume(ctx: &Ctx, args: &PidArg) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let state = kernel.resume(pid, Actor::operator())?;
    print_state(pid, &state, args.json)
}

/// Where a paused or resumed process now stands, as the API answers it.
fn print_state(pid: Pid, state: &ProcState, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", render::json(&wire::state_change(pid, state))?);
    } else {
        // A state names what it waits on (a message filter's channel is model text).
        outln!("pid {pid} is {}", one_line(&state.to_string()));
    }
    Ok(())
}
