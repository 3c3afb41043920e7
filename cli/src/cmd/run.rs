//! `libos run`: the scheduler.

use std::time::Duration;

use libos_console::wire;
use libos_kernel::{Kernel, OpenMode, Pid};
use libos_runtime::RunSummary;
use serde_json::{Value, json};

use crate::args::RunArgs;
use crate::ctx::{self, Ctx};
use crate::render;

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
    if args.json {
        outln!("{}", render::json(&summary_json(&kernel, &summary, until_idle)?)?);
    } else {
        ctx::report_summary(&summary, until_idle);
    }
    Ok(())
}

/// `run --json`: the summary, each process named by its API fields as it is now.
fn summary_json(kernel: &Kernel, s: &RunSummary, until_idle: Option<Duration>) -> anyhow::Result<Value> {
    let processes = |pids: &mut dyn Iterator<Item = Pid>| -> anyhow::Result<Vec<Value>> {
        pids.map(|pid| Ok(wire::process(&kernel.process(pid)?))).collect()
    };
    Ok(json!({
        "quanta": s.quanta,
        "cancelled": s.cancelled,
        "finished": processes(&mut s.finished.iter().map(|(p, _)| *p))?,
        "recovered": s.recovered.iter().map(|p| p.get()).collect::<Vec<_>>(),
        "woken": s.woken.iter().map(|p| p.get()).collect::<Vec<_>>(),
        "left_parked": processes(&mut s.parked.iter().map(|(p, _)| *p))?,
        "backing_off": s.backing_off,
        "idle_wait_s": until_idle.map(|d| d.as_secs()),
    }))
}
