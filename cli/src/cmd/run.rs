//! `libos run`: the scheduler.

use std::time::Duration;

use libos_kernel::OpenMode;

use crate::args::RunArgs;
use crate::ctx::{self, Ctx};

/// Runs until Ctrl-C (or, with `--until-idle`, until nothing is runnable
/// and no sleeper is due within `--idle-wait`).
pub async fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let kernel = ctx.open(OpenMode::Create)?;
    let images = ctx.images(&config)?;
    if args.sched.script.is_none() {
        ctx::check_models(&kernel, &config, &images)?;
    }
    let loaded = ctx::load_run(&config, images, args.sched.script.as_deref())?;
    let poll = Duration::from_millis(args.poll_ms);
    if !args.until_idle {
        eprintln!("libos: scheduler running on {} (Ctrl-C stops it cleanly)", ctx.store_name());
    }
    let until_idle = args.until_idle.then_some(args.idle_wait);
    let summary = ctx::run_scheduler(&kernel, loaded, &args.sched, poll, until_idle, ctx::interrupted()).await?;
    for pid in &summary.recovered {
        eprintln!("libos: recovered pid {pid} from an expired lease");
    }
    ctx::report_summary(&summary, until_idle);
    Ok(())
}
