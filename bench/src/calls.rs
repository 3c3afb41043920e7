//! `calls N MODES`: issue 16's share of valid dispatched calls per call
//! mode (and wire protocol: `KIND:MODE`, e.g. `responses:schema`,
//! `anthropic:text`) on a real small model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use libos_images::ImageSet;
use libos_kernel::{Actor, Kernel, OpenMode, SpawnSpec, StoreLocation};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ChatModel, ModelRouter};

/// Issue 16: on a real small model (llama.cpp serving SmolLM2-135M, see
/// `libos_tests::llama`), the share of quanta that end in a valid
/// dispatched call, per call mode, over a fixed set of 20 goals that each
/// name a file and its content. Each goal gets one quantum (up to three
/// model calls: the answer and two repairs) of a shipped `assistant`;
/// a goal completes when its file holds exactly its content.
pub(crate) async fn call_modes(goals: usize, modes: &str) -> anyhow::Result<()> {
    use libos_runtime::model::settings::{CallMode, Protocol, Sampling};
    use libos_runtime::{HttpConfig, HttpModel, RetryPolicy, Scheduler, SchedulerConfig};
    use libos_tests::llama::{CONTEXT, LlamaServer, Unavailable};

    let server = match LlamaServer::start() {
        Ok(s) => s,
        Err(Unavailable::Offline(why) | Unavailable::Broken(why)) => anyhow::bail!("no real model: {why}"),
    };
    const WORDS: [&str; 20] = [
        "apple", "river", "stone", "cloud", "lemon", "tiger", "piano", "green", "north", "candle", "silver", "garden",
        "window", "orange", "rocket", "forest", "yellow", "bridge", "winter", "planet",
    ];
    println!(
        "goals: {goals} · one quantum each (max 3 model calls) · image assistant · SmolLM2-135M-Instruct Q4_1, n_ctx {CONTEXT}"
    );
    println!(
        "| kind:call_mode | quanta ending in a valid dispatched call | model answers that were a valid call | goals completed | s per model call |"
    );
    println!("|---|---|---|---|---|");
    for item in modes.split(',') {
        let (kind, mode) = item.split_once(':').unwrap_or(("openai", item));
        let protocol = Protocol::parse(kind).with_context(|| format!("`{kind}` is not a kind"))?;
        let mode = CallMode::parse(mode).with_context(|| format!("`{mode}` is not a call mode"))?;
        let dir = tempfile::tempdir()?;
        let kernel = Kernel::open(&StoreLocation::File(dir.path().join("bench.db")), OpenMode::Create)?;
        let images = ImageSet::shipped()?;
        let image = images.get("assistant")?;
        let digest = kernel.register_image(&image.name, &image.version, &image.source)?;
        let mut budget = libos_kernel::budget::Budget::unlimited();
        budget.set_from("quanta=1").map_err(anyhow::Error::msg)?;
        let mut pids = Vec::new();
        for (i, word) in WORDS.iter().cycle().take(goals).enumerate() {
            let goal = format!(r#"Use write_file with path "f{i:02}.txt" and content "{word} {i}"."#);
            let spec = SpawnSpec {
                image: digest.clone(),
                goal,
                workspace: dir.path().to_path_buf(),
                parent: None,
                priority: 0,
                actor: Actor::operator(),
                budget,
            };
            pids.push((kernel.spawn_with_grants(&spec, &image.grants)?, format!("f{i:02}.txt"), format!("{word} {i}")));
        }
        // Only Chat Completions has `seed`.
        let seed = (protocol == Protocol::Chat).then_some(1);
        let config = HttpConfig {
            protocol,
            timeout: Duration::from_secs(600),
            retry: RetryPolicy { max_retries: 1, ..RetryPolicy::default() },
            call_mode: Some(mode),
            sampling: Sampling { max_tokens: 96, temperature: Some(0.0), seed, ..Sampling::default() },
            context_window: Some(CONTEXT),
            ..HttpConfig::new("default", &server.base_url(), "smollm2-135m")
        };
        let model: Arc<dyn ChatModel> = Arc::new(HttpModel::new(config)?);
        let env = quantum::env(
            kernel.clone(),
            ModelRouter::default().with_override(model),
            QuantumPolicy { max_repairs: 2, backoff: Duration::ZERO },
        );
        let started = Instant::now();
        let sched = SchedulerConfig { until_idle: true, concurrency: 1, ..SchedulerConfig::default() };
        Scheduler::new(env, sched).run(std::future::pending()).await?;
        let elapsed = started.elapsed();
        let (mut quanta, mut dispatched, mut calls, mut valid, mut done) = (0, 0, 0, 0, 0);
        for (pid, file, content) in &pids {
            let rows = kernel.model_calls(*pid)?;
            let (entries, _) = kernel.transcript(*pid, None)?;
            quanta += 1;
            dispatched += usize::from(!entries.is_empty());
            calls += rows.len();
            valid += rows.iter().filter(|c| c.record.outcome == libos_kernel::ModelCallOutcome::Ok).count();
            done += usize::from(std::fs::read_to_string(dir.path().join(file)).ok().as_deref() == Some(content));
        }
        println!(
            "| {kind}:{mode} | {dispatched}/{quanta} ({:.0}%) | {valid}/{calls} ({:.0}%) | {done}/{goals} | {:.1} |",
            100.0 * dispatched as f64 / quanta as f64,
            100.0 * valid as f64 / calls.max(1) as f64,
            elapsed.as_secs_f64() / calls.max(1) as f64
        );
    }
    Ok(())
}
