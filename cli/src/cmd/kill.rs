//! `libos kill`.

use libos_kernel::{Actor, OpenMode};

use crate::args::KillArgs;
use crate::ctx::{Ctx, parse_pid};

/// Kills a process; a scheduler running it cancels its quantum within its poll interval.
pub fn run(ctx: &Ctx, args: &KillArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    kernel.kill(pid, Actor::operator(), &args.reason)?;
    println!("killed pid {pid}");
    Ok(())
}
