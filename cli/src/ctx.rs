//! What every command needs: the store, the configuration, images, models.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use libos_images::ImageSet;
use libos_kernel::{Actor, Durability, Kernel, OpenMode, OpenOptions, Pid, ProcState, StoreLocation, text};
use libos_runtime::quantum::QuantumPolicy;
use libos_runtime::{Config, ModelRouter, RunSummary, Scheduler, SchedulerConfig, Script, ScriptedModel};
use libos_sandbox::{Launcher, Sandbox};
use libos_tools::Registry;

use crate::args::SchedArgs;
use crate::exit::UsageError;

/// Global options, resolved lazily per command.
pub struct Ctx {
    /// `--db`.
    pub db: String,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--sync`.
    pub sync: Durability,
}

impl Ctx {
    /// Opens the store; `Create` makes it if missing.
    pub fn open(&self, mode: OpenMode) -> anyhow::Result<Kernel> {
        let location = StoreLocation::parse(&self.db);
        let fresh = matches!(&location, StoreLocation::File(p) if !p.exists());
        let options = OpenOptions { durability: self.sync, ..OpenOptions::default() };
        let kernel = Kernel::open_with(&location, mode, options)?;
        if fresh && self.config.is_none() {
            write_config_template();
        }
        // libos's configuration is its own state: no tool reaches it, whether
        // or not it exists yet (the next start would read it).
        kernel.protect(self.config.as_deref().unwrap_or(std::path::Path::new("libos.toml")));
        Ok(kernel)
    }

    /// The store as shown to people (a URL without its password).
    pub fn store_name(&self) -> String {
        StoreLocation::parse(&self.db).to_string()
    }

    /// Loads the configuration (file and environment).
    pub fn config(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), &libos_runtime::config::process_env).map_err(anyhow::Error::msg)
    }

    /// Shipped images plus the configured directories; the MCP servers
    /// they name are declared, not listed (a run lists them at its start).
    pub fn images(&self, config: &Config) -> anyhow::Result<ImageSet> {
        crate::mcp_run::images_with(&config.image_dirs, &crate::mcp_run::offline(config)?)
    }
}

/// What libos writes as `./libos.toml` when it creates a store in a
/// directory that has none: only comments, so it configures nothing. It
/// exists so that the sandbox can cover it: a protected file that exists is
/// hidden behind a read-only mount and the directory around it stays
/// writable for programs, while one that does not exist can only be kept
/// from being planted by refusing programs every new entry in that directory.
const CONFIG_TEMPLATE: &str = "\
# libos configuration (see the README, \"Configuration\"). libos wrote this
# file when it created the store here; no agent can create or change it.
#
# image_dirs = [\"./my-images\"]
#
# [models.default]
# base_url = \"http://127.0.0.1:8080/v1\"
# model = \"gpt-4o-mini\"
# api_key_env = \"OPENAI_API_KEY\"
";

fn write_config_template() {
    let path = Path::new("libos.toml");
    // create_new: never overwrites what the operator wrote meanwhile.
    let created = std::fs::OpenOptions::new().write(true).create_new(true).open(path);
    if let Ok(mut file) = created {
        let _ = std::io::Write::write_all(&mut file, CONFIG_TEMPLATE.as_bytes());
    }
}

/// What a scheduler runs with, and where it came from.
pub struct Loaded {
    /// Models by profile.
    pub router: ModelRouter,
    /// The images processes may spawn.
    pub catalog: ImageSet,
    /// The tools they may have: the built-ins and the configuration's.
    pub registry: Registry,
    /// The configuration file (whether or not it exists), image directories
    /// and scripts: what the next start loads, so no tool may write them.
    pub sources: Vec<PathBuf>,
    /// The configured MCP servers, listed at the run's start when an image names them.
    pub mcp: std::collections::BTreeMap<libos_mcp::ServerName, libos_mcp::ServerConfig>,
    /// The configured image directories (the catalog is loaded again once
    /// the servers' tools are known).
    pub image_dirs: Vec<PathBuf>,
    /// The operator's headers for `http_request` (`[http.HOST]`).
    pub http: libos_tools::OperatorHeaders,
}

/// Parses a pid argument.
pub fn parse_pid(text: &str) -> Result<Pid, UsageError> {
    text.parse().map_err(UsageError)
}

/// What a scheduler runs with: the configuration's models (or `script` for
/// all of them), the images of `catalog` (loaded from `config`), and every
/// path they were loaded from.
pub fn load_run(config: &Config, catalog: ImageSet, script: Option<&Path>) -> anyhow::Result<Loaded> {
    let router = router(config, script)?;
    let sources = config.loaded_paths().into_iter().chain(script.map(Path::to_path_buf)).collect();
    let registry = config.registry().map_err(anyhow::Error::msg)?;
    Ok(Loaded {
        router,
        catalog,
        registry,
        sources,
        mcp: config.mcp.clone(),
        image_dirs: config.image_dirs.clone(),
        http: config.http.clone(),
    })
}

/// The model router for a run: configured profiles, or a script for all of them.
fn router(config: &Config, script: Option<&Path>) -> anyhow::Result<ModelRouter> {
    let router = ModelRouter::from_config(config);
    Ok(match script {
        Some(path) => {
            let script = Script::load(path).map_err(anyhow::Error::msg)?;
            router.with_override(Arc::new(ScriptedModel::new("scripted", script)))
        }
        None => router,
    })
}

/// What to say when `profile` names no configured model (and no script
/// stands in for every profile): one line naming what to set.
pub fn missing_model(config: &Config, profile: &str, image: &str) -> Option<String> {
    if config.profiles.contains_key(profile) {
        return None;
    }
    Some(format!(
        "no model configured for image `{image}`: define [models.{profile}] in {}{}, or pass --script FILE",
        config.file.as_deref().unwrap_or(Path::new("libos.toml")).display(),
        if profile == "default" { ", set OPENAI_BASE_URL (a local server) or LIBOS_MODEL" } else { "" }
    ))
}

/// Refuses to start a scheduler (no `--script`) when a live process's
/// image names a model profile that is not configured: its quanta could
/// only fail.
pub fn check_models(kernel: &Kernel, config: &Config, catalog: &ImageSet) -> anyhow::Result<()> {
    for p in kernel.processes(libos_kernel::ProcessFilter::Live)? {
        let Ok(image) = catalog.get(&p.image) else { continue };
        if let Some(why) = missing_model(config, &image.model, &image.name) {
            return Err(UsageError(format!("{why} (pid {} needs it)", p.pid)).into());
        }
    }
    Ok(())
}

/// Runs a scheduler on `kernel` until `shutdown`, or with `until_idle`
/// until idle, waiting that long ahead for sleepers' timers.
pub async fn run_scheduler(
    kernel: &Kernel,
    loaded: Loaded,
    sched: &SchedArgs,
    poll: Duration,
    until_idle: Option<Duration>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<RunSummary> {
    // What this run was loaded from is part of it, not the agents' to edit:
    // a planted configuration or image would be the next run's authority.
    for path in &loaded.sources {
        kernel.protect(path);
    }
    let Loaded { router, catalog, registry, mcp, image_dirs, http, .. } = loaded;
    let sandbox = sandbox(kernel, sched)?;
    let hub = crate::mcp_run::hub(kernel, &mcp, &sandbox);
    let names = crate::mcp_run::named(catalog.iter());
    let tools = crate::mcp_run::list(hub, &names, &image_dirs, registry).await?;
    let env = libos_runtime::quantum::env_with_registry(
        kernel.clone(),
        router,
        QuantumPolicy::default(),
        tools.catalog.clone(),
        sandbox,
        tools.registry.clone(),
    );
    let env = libos_runtime::quantum::with_http(env, http);
    let config = SchedulerConfig {
        concurrency: usize::from(sched.concurrency),
        poll,
        until_idle: until_idle.is_some(),
        idle_wait: until_idle.unwrap_or_default(),
        lease_ttl: sched.lease_ttl,
        ..SchedulerConfig::default()
    };
    let scheduler = Scheduler::new(env, config);
    let summary = scheduler.run(shutdown).await;
    tools.stop().await;
    summary.context("scheduler stopped")
}

/// Where the scheduler's programs run: the sandbox, through `libos-sandbox`
/// (or this binary, which is a launcher too), probed now; unconfined only when the operator says so (which
/// is audited). A host that cannot confine programs is reported at start,
/// and every program is refused there.
fn sandbox(kernel: &Kernel, sched: &SchedArgs) -> anyhow::Result<Sandbox> {
    if sched.unconfined_shell {
        let detail = "scheduler started with --unconfined-shell: programs run with the scheduler's own authority";
        kernel.record_operator(
            &Actor::operator(),
            libos_kernel::audit::KernelAction::UnconfinedShell,
            serde_json::json!({}),
            detail,
        )?;
        eprintln!("libos: warning: {detail}");
        return Ok(Sandbox::unconfined());
    }
    // The small `libos-sandbox` beside this binary starts faster (it is
    // executed twice per program); this binary serves where it is missing.
    let launcher = Launcher::find().or_else(|_| {
        std::env::current_exe().map(Launcher::new).map_err(|e| libos_sandbox::SandboxError::NoLauncher(e.to_string()))
    });
    let confined = launcher.and_then(Sandbox::confined);
    Ok(match confined {
        Ok(s) => {
            tracing::info!("shell programs: {}", s.describe());
            s
        }
        Err(e) => {
            eprintln!(
                "libos: warning: shell programs will be refused: {e} (--unconfined-shell runs them without a sandbox)"
            );
            Sandbox::unavailable(e.to_string())
        }
    })
}

/// Parked processes a stopped run names one by one; the rest are counted.
const PARKED_SHOWN: usize = 10;

/// What a scheduler prints when it stops: its counts, the sleepers it
/// woke, and for a run `until_idle` (waiting `bound` ahead for timers)
/// what it stopped on and what it left parked.
pub fn report_summary(summary: &RunSummary, until_idle: Option<Duration>) {
    eprintln!(
        "libos: {} quanta run, {} cancelled, {} processes finished",
        summary.quanta,
        summary.cancelled,
        summary.finished.len()
    );
    if !summary.woken.is_empty() {
        let pids: Vec<String> = summary.woken.iter().map(|p| format!("pid {p}")).collect();
        eprintln!("libos: woke from sleep: {}", pids.join(", "));
    }
    if summary.backing_off {
        eprintln!(
            "libos: stopped with processes backing off after model errors (see `libos ps`, `libos logs PID`); `libos run` tries them again"
        );
    }
    let Some(bound) = until_idle else { return };
    let bound = libos_kernel::time::format_duration(bound);
    eprintln!("libos: stopped idle: nothing runnable and no sleeper due within {bound} (--idle-wait)");
    for (pid, state) in summary.parked.iter().take(PARKED_SHOWN) {
        let asleep = matches!(state, ProcState::Waiting { on: libos_kernel::WaitOn::Timer(_) });
        let later = if asleep { ": past the bound, a later `libos run` wakes it" } else { "" };
        eprintln!("libos: left parked: pid {pid} {}{later}", text::escape_line(&state.to_string()));
    }
    if summary.parked.len() > PARKED_SHOWN {
        eprintln!("libos: and {} more left parked (`libos ps`)", summary.parked.len() - PARKED_SHOWN);
    }
}

/// Resolves once Ctrl-C (or SIGTERM) arrives. The signals are caught from
/// this call on, not from the first poll: a command that prints before it
/// waits is never killed by a Ctrl-C in between.
pub fn interrupted() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let caught = signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
        async move {
            match caught {
                Ok((mut int, mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
