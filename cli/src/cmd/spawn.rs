//! `libos spawn`: create a root process from an image.

use std::time::Duration;

use anyhow::Context as _;
use libos_kernel::caps::GrantSpec;
use libos_kernel::{Actor, Kernel, OpenMode, Pid, ProcState, SpawnSpec};

use crate::args::SpawnArgs;
use crate::ctx::{self, Ctx};
use crate::exit::UsageError;
use crate::render::{self, block, one_line};
use libos_console::wire;

/// Registers the image, spawns the process, prints its pid; with `--run`,
/// runs the scheduler until idle and prints how the process ended.
pub async fn run(ctx: &Ctx, args: &SpawnArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let images = ctx.images(&config)?;
    let image = images.get(&args.image)?;
    let workspace = match &args.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let workspace = std::fs::canonicalize(&workspace)
        .with_context(|| format!("workspace {} does not exist", workspace.display()))?;
    anyhow::ensure!(workspace.is_dir(), "workspace {} is not a directory", workspace.display());
    let extra = args.grants.iter().map(|g| GrantSpec::parse(g).map_err(UsageError)).collect::<Result<Vec<_>, _>>()?;
    let mut budget = image.budget;
    for assignment in args.budget.iter().flat_map(|b| b.split(',')).map(str::trim).filter(|a| !a.is_empty()) {
        budget.set_from(assignment).map_err(UsageError)?;
    }
    // A process no model can run: refused when it would run now, and
    // named when it is left for a later `libos run` (which may bring --script).
    let missing = args.sched.script.is_none().then(|| ctx::missing_model(&config, &image.model, &image.name)).flatten();
    if let Some(why) = &missing
        && args.run
    {
        return Err(UsageError(why.clone()).into());
    }
    let kernel = ctx.open(OpenMode::Create)?;
    let pid = spawn_with_budget(&kernel, image, &args.goal, workspace, args.priority, &extra, budget)?;
    if !args.json {
        outln!("{pid}");
    } else if !args.run {
        outln!("{}", render::json(&wire::process(&kernel.process(pid)?))?);
    }
    if let Some(why) = missing {
        eprintln!("libos: warning: {why}; `libos run` refuses to start until then");
    }
    if args.run {
        let loaded = ctx::load_run(&config, images, args.sched.script.as_deref())?;
        let until_idle = Some(libos_runtime::DEFAULT_IDLE_WAIT);
        let summary =
            ctx::run_scheduler(&kernel, loaded, &args.sched, Duration::from_millis(20), until_idle, ctx::interrupted())
                .await?;
        if summary.backing_off || !summary.parked.is_empty() {
            ctx::report_summary(&summary, until_idle);
        }
        let p = kernel.process(pid)?;
        if args.json {
            outln!("{}", render::json(&wire::process(&p))?);
            return Ok(());
        }
        match &p.state {
            ProcState::Exited { code, result } => outln!("pid {pid} exited({code}): {}", block(result)),
            other => outln!("pid {pid} is {}", one_line(&other.to_string())),
        }
    }
    Ok(())
}

/// Registers `image` in the store and spawns a root process from it,
/// holding the image's grants and the operator's `extra` ones, under the
/// image's budget.
pub fn spawn(
    kernel: &Kernel,
    image: &libos_images::Image,
    goal: &str,
    workspace: std::path::PathBuf,
    priority: i32,
    extra: &[GrantSpec],
) -> anyhow::Result<Pid> {
    spawn_with_budget(kernel, image, goal, workspace, priority, extra, image.budget)
}

/// [`spawn`] under a given budget.
pub fn spawn_with_budget(
    kernel: &Kernel,
    image: &libos_images::Image,
    goal: &str,
    workspace: std::path::PathBuf,
    priority: i32,
    extra: &[GrantSpec],
    budget: libos_kernel::budget::Budget,
) -> anyhow::Result<Pid> {
    let digest = kernel.register_image(&image.name, &image.version, &image.source)?;
    let grants: Vec<GrantSpec> = image.grants.iter().chain(extra).cloned().collect();
    let pid = kernel.spawn_with_grants(
        &SpawnSpec {
            image: digest,
            goal: goal.to_string(),
            workspace,
            parent: None,
            priority,
            actor: Actor::operator(),
            budget,
        },
        &grants,
    )?;
    Ok(pid)
}
