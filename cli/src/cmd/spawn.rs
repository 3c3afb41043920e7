//! `libos spawn`: create a root process from an image.

use std::time::Duration;

use anyhow::Context as _;
use libos_kernel::{Actor, Kernel, OpenMode, Pid, ProcState, SpawnSpec};

use crate::args::SpawnArgs;
use crate::ctx::{self, Ctx};

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
    let kernel = ctx.open(OpenMode::Create)?;
    let pid = spawn(&kernel, image, &args.goal, workspace, args.priority)?;
    println!("{pid}");
    if args.run {
        let router = ctx::router(&config, args.sched.script.as_deref())?;
        ctx::run_scheduler(&kernel, router, &args.sched, Duration::from_millis(20), true, ctx::interrupted()).await?;
        let p = kernel.process(pid)?;
        match &p.state {
            ProcState::Exited { code, result } => println!("pid {pid} exited({code}): {result}"),
            other => println!("pid {pid} is {other}"),
        }
    }
    Ok(())
}

/// Registers `image` in the store and spawns a root process from it.
pub fn spawn(
    kernel: &Kernel,
    image: &libos_images::Image,
    goal: &str,
    workspace: std::path::PathBuf,
    priority: i32,
) -> anyhow::Result<Pid> {
    let digest = kernel.register_image(&image.name, &image.version, &image.source)?;
    let pid = kernel.spawn(&SpawnSpec {
        image: digest,
        goal: goal.to_string(),
        workspace,
        parent: None,
        priority,
        actor: Actor::operator(),
    })?;
    Ok(pid)
}
