//! What every command needs: the store, the configuration, images, models.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use libos_images::ImageSet;
use libos_kernel::{Kernel, OpenMode, Pid, StoreLocation};
use libos_runtime::quantum::QuantumPolicy;
use libos_runtime::{Config, ModelRouter, RunSummary, Scheduler, SchedulerConfig, Script, ScriptedModel};

use crate::args::SchedArgs;
use crate::exit::UsageError;

/// Global options, resolved lazily per command.
pub struct Ctx {
    /// `--db`.
    pub db: String,
    /// `--config`.
    pub config: Option<PathBuf>,
}

impl Ctx {
    /// Opens the store; `Create` makes it if missing.
    pub fn open(&self, mode: OpenMode) -> anyhow::Result<Kernel> {
        let kernel = Kernel::open(&StoreLocation::parse(&self.db), mode)?;
        // libos's configuration is its own state: no tool reaches it.
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

    /// Shipped images plus the configured directories.
    pub fn images(&self, config: &Config) -> anyhow::Result<ImageSet> {
        let mut set = ImageSet::shipped()?;
        for dir in &config.image_dirs {
            set.add_dir(dir)?;
        }
        Ok(set)
    }
}

/// Parses a pid argument.
pub fn parse_pid(text: &str) -> Result<Pid, UsageError> {
    text.parse().map_err(UsageError)
}

/// The model router for a run: configured profiles, or a script for all of them.
pub fn router(config: &Config, script: Option<&Path>) -> anyhow::Result<ModelRouter> {
    let router = ModelRouter::from_config(config);
    Ok(match script {
        Some(path) => {
            let script = Script::load(path).map_err(anyhow::Error::msg)?;
            router.with_override(Arc::new(ScriptedModel::new("scripted", script)))
        }
        None => router,
    })
}

/// Runs a scheduler on `kernel` until idle (or until `shutdown`).
pub async fn run_scheduler(
    kernel: &Kernel,
    router: ModelRouter,
    catalog: ImageSet,
    sched: &SchedArgs,
    poll: Duration,
    until_idle: bool,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<RunSummary> {
    // The script a model plays is part of the run, not the agents' to edit.
    if let Some(script) = &sched.script {
        kernel.protect(script);
    }
    let env = libos_runtime::quantum::env_with_catalog(kernel.clone(), router, QuantumPolicy::default(), catalog);
    let config = SchedulerConfig {
        concurrency: usize::from(sched.concurrency),
        poll,
        until_idle,
        lease_ttl: sched.lease_ttl,
        ..SchedulerConfig::default()
    };
    let scheduler = Scheduler::new(env, config);
    scheduler.run(shutdown).await.context("scheduler stopped")
}

/// The line a scheduler prints when it stops.
pub fn report_summary(summary: &RunSummary) {
    eprintln!(
        "libos: {} quanta run, {} cancelled, {} processes finished",
        summary.quanta,
        summary.cancelled,
        summary.finished.len()
    );
}

/// Resolves once Ctrl-C (or SIGTERM) arrives.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
