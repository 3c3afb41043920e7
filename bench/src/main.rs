//! libos benchmarks. Each scenario prints the machine, its parameters and
//! its result; BENCHMARKS.md records them with the command that reproduces them.
//!
//! ```text
//! cargo run --release -p libos-bench -- quantum [PROCESSES] [QUANTA_EACH] [normal|full]
//! cargo run --release -p libos-bench -- appends [WRITERS] [COMMITS_EACH] [normal|full]
//! cargo run --release -p libos-bench -- age [QUANTA]
//! cargo run --release -p libos-bench -- age-of messages|memory|audit [LEVEL,LEVEL,...]
//! cargo run --release -p libos-bench -- verify [RECORDS]
//! cargo run --release -p libos-bench -- wake [APPROVALS]
//! cargo run --release -p libos-bench -- spawn [PROCESSES]
//! cargo run --release -p libos-bench -- parked [PROCESSES] [WAKES]
//! cargo run --release -p libos-bench -- mock [PROCESSES] [QUANTA_EACH] [CONCURRENCY]
//! cargo run --release -p libos-bench -- idle [SECONDS]
//! cargo run --release -p libos-bench -- shell [RUNS]
//! cargo run --release -p libos-bench -- mcp [SAMPLES]
//! cargo run --release -p libos-bench -- scripted [AGENTS] [QUANTA_EACH]
//! cargo run --release -p libos-bench -- langgraph [AGENTS] [CALLS]
//! cargo run --release -p libos-bench -- search [OBJECTS] [PROCESSES]
//! ```

mod age;
mod appends;
mod calls;
mod langgraph;
mod mcp;
mod scripted;
mod search;
mod shell;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use libos_images::ImageSet;
use libos_kernel::audit::{AuditAction, KernelAction};
use libos_kernel::{Actor, Durability, Kernel, OpenMode, OpenOptions, SchedulerId, SpawnSpec, StoreLocation};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ChatModel, ChatRequest, ChatResponse, ModelError, ModelRouter, RawToolCall};

/// A model that answers instantly with one call of `tool`: measures
/// everything but the model.
pub(crate) struct InstantModel {
    pub(crate) tool: &'static str,
    pub(crate) args: &'static str,
}

/// The instant model calling `now`.
pub(crate) const NOW: InstantModel = InstantModel { tool: "now", args: "{}" };

#[async_trait]
impl ChatModel for InstantModel {
    fn profile(&self) -> &str {
        "instant"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        Ok(ChatResponse {
            model: "instant".into(),
            content: None,
            tool_calls: vec![RawToolCall {
                id: format!("call_{}", request.meta.call_index),
                name: self.tool.into(),
                arguments: self.args.into(),
            }],
            usage: Some(libos_runtime::model::ReportedUsage { input: 100, output: 10, ..Default::default() }),
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores, {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A durable store in `dir` with `n` spawned assistant processes (one transaction each).
fn durable_kernel(dir: &std::path::Path, n: usize, goal: impl Fn(usize) -> String) -> anyhow::Result<Kernel> {
    durable_kernel_of("assistant", dir, n, goal)
}

/// [`durable_kernel`] with processes of another shipped image.
fn durable_kernel_of(
    image: &str,
    dir: &std::path::Path,
    n: usize,
    goal: impl Fn(usize) -> String,
) -> anyhow::Result<Kernel> {
    durable_kernel_full(image, dir, n, goal, Durability::Normal)
}

/// [`durable_kernel`] with a durability setting.
fn durable_kernel_with(
    dir: &std::path::Path,
    n: usize,
    goal: impl Fn(usize) -> String,
    durability: Durability,
) -> anyhow::Result<Kernel> {
    durable_kernel_full("assistant", dir, n, goal, durability)
}

fn durable_kernel_full(
    image: &str,
    dir: &std::path::Path,
    n: usize,
    goal: impl Fn(usize) -> String,
    durability: Durability,
) -> anyhow::Result<Kernel> {
    let options = OpenOptions { durability, ..OpenOptions::default() };
    let kernel = Kernel::open_with(&StoreLocation::File(dir.join("bench.db")), OpenMode::Create, options)?;
    let images = ImageSet::shipped()?;
    let image = images.get(image)?;
    let digest = kernel.register_image(&image.name, &image.version, &image.source)?;
    for i in 0..n {
        kernel.spawn(&SpawnSpec {
            image: digest.clone(),
            goal: goal(i),
            workspace: dir.to_path_buf(),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget: libos_kernel::budget::Budget::unlimited(),
        })?;
    }
    Ok(kernel)
}

async fn quantum_overhead(processes: usize, each: usize, durability: Durability) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = durable_kernel_with(dir.path(), processes, |i| format!("benchmark process {i}"), durability)?;
    let router = ModelRouter::default().with_override(Arc::new(NOW));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let owner = SchedulerId("bench".into());
    let total = processes * each;
    let mut samples = Vec::with_capacity(total);
    let started = Instant::now();
    for _ in 0..total {
        let t = Instant::now();
        let lease = kernel.lease(&owner, Duration::from_secs(60), 1, &[])?.pop().context("nothing to lease")?;
        quantum::run(env.clone(), lease).await?;
        samples.push(t.elapsed());
    }
    let wall = started.elapsed();
    samples.sort();
    println!("scenario: quantum overhead excluding the model");
    println!("machine: {}", machine());
    println!(
        "store: SQLite file, WAL, synchronous={} ({})",
        durability.as_str().to_uppercase(),
        dir.path().join("bench.db").display()
    );
    println!(
        "parameters: {processes} processes x {each} quanta, instant model answering `now`, lease + quantum + commit per sample"
    );
    println!(
        "result: {total} quanta in {:.2} s ({:.0} quanta/s); p50 {} us, p90 {} us, p99 {} us, max {} us",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        percentile(&samples, 0.50).as_micros(),
        percentile(&samples, 0.90).as_micros(),
        percentile(&samples, 0.99).as_micros(),
        samples.last().map_or(0, |d| d.as_micros()),
    );
    Ok(())
}

fn verify_speed(records: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let fill = Instant::now();
    let kernel = durable_kernel(dir.path(), records, |i| {
        format!("process number {i} with an ordinary goal of a sentence or two")
    })?;
    let fill = fill.elapsed();
    let mut best = Duration::MAX;
    let mut report = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = kernel.audit_verify(None)?;
        best = best.min(t.elapsed());
        report = Some(r);
    }
    let report = report.context("no verification ran")?;
    anyhow::ensure!(report.ok(), "chain broken: {:?}", report.broken);
    println!("scenario: audit verify");
    println!("machine: {}", machine());
    println!("parameters: {records} records (spawn records, ~450 bytes canonical each), SQLite file store, best of 3");
    println!(
        "fill: {records} durable appends (one spawn transaction each) in {:.2} s ({:.0}/s)",
        fill.as_secs_f64(),
        records as f64 / fill.as_secs_f64()
    );
    println!(
        "result: verified {} records in {:.3} s = {:.0} records/s; head {}",
        report.records,
        best.as_secs_f64(),
        report.records as f64 / best.as_secs_f64(),
        report.head
    );
    Ok(())
}

/// A model that always asks to write the same file (which a grant makes ask).
struct WriterModel;

#[async_trait]
impl ChatModel for WriterModel {
    fn profile(&self) -> &str {
        "writer"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        Ok(ChatResponse {
            model: "writer".into(),
            content: None,
            tool_calls: vec![RawToolCall {
                id: format!("call_{}", request.meta.call_index),
                name: "write_file".into(),
                arguments: format!("{{\"path\": \"out.txt\", \"content\": \"{}\"}}", request.meta.call_index),
            }],
            usage: Some(libos_runtime::model::ReportedUsage { input: 100, output: 10, ..Default::default() }),
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

/// Wake latency: an approval committed through a second store connection
/// (as `libos approve` in another process does) until the scheduler leases
/// the resumed process, read from the audit log's own timestamps.
///
/// With `postgres`, the store is PostgreSQL and the scheduler polls only
/// every 10 s: a wake sooner than that came by notification.
async fn wake_latency(approvals: usize, postgres: bool) -> anyhow::Result<()> {
    use libos_kernel::caps::GrantSpec;
    use libos_runtime::{Scheduler, SchedulerConfig};

    let dir = tempfile::tempdir()?;
    let schema = if postgres { Some(postgres_schema()?) } else { None };
    let location = match &schema {
        Some(schema) => StoreLocation::Url(schema.url()),
        None => StoreLocation::File(dir.path().join("bench.db")),
    };
    let kernel = Kernel::open(&location, OpenMode::Create)?;
    let images = ImageSet::shipped()?;
    let image = images.get("assistant")?;
    let digest = kernel.register_image(&image.name, &image.version, &image.source)?;
    let mut grants = image.grants.clone();
    grants.push(GrantSpec::parse("write fs:** ask").map_err(anyhow::Error::msg)?);
    let spec = SpawnSpec {
        image: digest,
        goal: "write forever".into(),
        workspace: dir.path().to_path_buf(),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    };
    let pid = kernel.spawn_with_grants(&spec, &grants)?;
    let router = ModelRouter::default().with_override(Arc::new(WriterModel));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let mut config = SchedulerConfig::default();
    if postgres {
        config.poll = Duration::from_secs(10);
    }
    let poll = config.poll;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(async move {
        Scheduler::new(env, config)
            .run(async {
                let _ = stopped.await;
            })
            .await
    });

    // The operator's own connection: its commits reach the scheduler only
    // through the store, as another process's would.
    let operator = Kernel::open(&location, OpenMode::Existing)?;
    let mut rng_state = 0x9e37_79b9_u64;
    for _ in 0..approvals {
        let id = loop {
            if let Some(r) = operator.pending()?.first() {
                break r.id;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        // Decorrelate the approval from the scheduler's poll phase.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        tokio::time::sleep(Duration::from_micros(rng_state % 25_000)).await;
        operator.decide(id, &libos_kernel::Verdict::Approve { always: false }, &Actor::operator())?;
    }
    let _ = stop.send(());
    scheduler.await??;

    let records = kernel.audit(&libos_kernel::AuditFilter { pid: Some(pid), ..Default::default() })?;
    let mut samples = Vec::new();
    let mut approved_at = None;
    for r in &records {
        match r.action {
            AuditAction::Kernel(KernelAction::Approve) => approved_at = Some(r.at),
            AuditAction::Kernel(KernelAction::Lease) => {
                if let Some(t) = approved_at.take() {
                    samples.push(r.at.since(t));
                }
            }
            _ => {}
        }
    }
    anyhow::ensure!(!samples.is_empty(), "no approval was followed by a lease");
    samples.sort();
    println!("scenario: wake latency, approval in another connection -> resumed quantum leased");
    println!("machine: {}", machine());
    println!(
        "parameters: {} approvals, scheduler poll {} ms, {}",
        samples.len(),
        poll.as_millis(),
        if postgres { "PostgreSQL store (wakes by LISTEN/NOTIFY)" } else { "SQLite file store" }
    );
    println!(
        "result: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.90).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    Ok(())
}

/// This process's resident set, in MiB (from /proc).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time this process has used (user + system), from /proc.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.split_whitespace().collect::<Vec<_>>();
            Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A model answering one fixed tool call at once.
struct Fixed(&'static str, &'static str);

#[async_trait]
impl ChatModel for Fixed {
    fn profile(&self) -> &str {
        "fixed"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        Ok(ChatResponse {
            model: "fixed".into(),
            content: None,
            tool_calls: vec![RawToolCall {
                id: format!("call_{}", request.meta.call_index),
                name: self.0.into(),
                arguments: self.1.into(),
            }],
            usage: Some(libos_runtime::model::ReportedUsage { input: 100, output: 10, ..Default::default() }),
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

fn spawns(n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    durable_kernel(dir.path(), n, |i| format!("process {i}"))?;
    let wall = t.elapsed();
    println!("scenario: durable spawns");
    println!("machine: {}", machine());
    println!("parameters: {n} spawns, one transaction each, SQLite file store (WAL, synchronous=NORMAL)");
    println!("result: {n} in {:.2} s = {:.0} spawns/s", wall.as_secs_f64(), n as f64 / wall.as_secs_f64());
    Ok(())
}

/// Parks `n` processes in `receive`, measures the scheduler's memory with
/// them parked, then wakes `wakes` of them by message from this process and
/// measures each message-to-lease latency from the audit log.
async fn parked(n: usize, wakes: usize) -> anyhow::Result<()> {
    use libos_kernel::ipc::{MessageKind, NewMessage};
    use libos_runtime::{Scheduler, SchedulerConfig};

    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    // Workers: their tool table has `receive`.
    let kernel = durable_kernel_of("worker", dir.path(), n, |i| format!("sleeper {i}"))?;
    let spawned = t.elapsed();
    let router = ModelRouter::default().with_override(Arc::new(Fixed("receive", r#"{"channel":"wake"}"#)));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let t = Instant::now();
    let config = SchedulerConfig { until_idle: true, concurrency: 64, ..SchedulerConfig::default() };
    Scheduler::new(env.clone(), config).run(std::future::pending()).await?;
    let parking = t.elapsed();
    let rss_before = rss_mib();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(async move {
        Scheduler::new(env, SchedulerConfig { concurrency: 64, ..SchedulerConfig::default() })
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_mib();
    let mut samples = Vec::with_capacity(wakes);
    let step = (n / wakes.max(1)).max(1);
    for i in 0..wakes {
        let pid = libos_kernel::Pid((i * step + 1) as i64);
        let m = NewMessage {
            to: pid,
            body: "wake up".into(),
            kind: MessageKind::Normal,
            channel: Some("wake".into()),
            correlation_id: None,
            reply_to: None,
        };
        kernel.send(&m, &Actor::operator())?;
        // One at a time: wait until it has been leased again.
        while kernel.process(pid)?.usage.quanta < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // From the audit log's own timestamps: the send, then the lease.
        let records = kernel.audit(&libos_kernel::AuditFilter { pid: Some(pid), ..Default::default() })?;
        let sent = records.iter().rev().find(|r| r.action.is(KernelAction::Send)).map(|r| r.at);
        let leased = records.iter().rev().find(|r| r.action.is(KernelAction::Lease)).map(|r| r.at);
        if let (Some(s), Some(l)) = (sent, leased) {
            samples.push(l.since(s));
        }
    }
    let rss_after = rss_mib();
    let _ = stop.send(());
    scheduler.await??;
    samples.sort();
    println!("scenario: parked processes");
    println!("machine: {}", machine());
    println!(
        "parameters: {n} processes parked in `receive`, then {wakes} woken one at a time by a message from this process"
    );
    println!(
        "setup: spawned in {:.1} s, parked (one quantum each) in {:.1} s",
        spawned.as_secs_f64(),
        parking.as_secs_f64()
    );
    println!(
        "result: scheduler RSS with all parked {rss_before:.1} MiB, running idle {rss_idle:.1} MiB, after the wakes {rss_after:.1} MiB; \
         wake (message committed -> quantum leased) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    Ok(())
}

/// `processes` x `each` quanta against a mock OpenAI-compatible server that
/// answers after 100 ms, with `concurrency` model calls in flight.
async fn mock_throughput(processes: usize, each: usize, concurrency: usize) -> anyhow::Result<()> {
    use libos_runtime::{Scheduler, SchedulerConfig};

    let latency = Duration::from_millis(100);
    let (_server, router) = mock_model(latency).await?;
    let dir = tempfile::tempdir()?;
    let kernel = Kernel::open(&StoreLocation::File(dir.path().join("bench.db")), OpenMode::Create)?;
    spawn_quanta(&kernel, processes, each)?;
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let config = SchedulerConfig { until_idle: true, concurrency, ..SchedulerConfig::default() };
    let t = Instant::now();
    let summary = Scheduler::new(env, config).run(std::future::pending()).await?;
    let wall = t.elapsed();
    let ideal = concurrency as f64 / latency.as_secs_f64();
    let achieved = summary.quanta as f64 / wall.as_secs_f64();
    println!("scenario: throughput against a mock OpenAI-compatible server");
    println!("machine: {}", machine());
    println!(
        "parameters: {processes} processes x {each} quanta, server latency {} ms, concurrency {concurrency}, SQLite file store",
        latency.as_millis()
    );
    println!(
        "result: {} quanta in {:.2} s = {achieved:.0} quanta/s; ideal {ideal:.0} quanta/s; {:.1}% of ideal",
        summary.quanta,
        wall.as_secs_f64(),
        achieved / ideal * 100.0
    );
    Ok(())
}

/// A fresh PostgreSQL schema for a benchmark, from `LIBOS_TEST_POSTGRES`.
fn postgres_schema() -> anyhow::Result<libos_kernel::testing::ScratchSchema> {
    libos_kernel::testing::ScratchSchema::new()
        .context("set LIBOS_TEST_POSTGRES to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test)")
}

/// A mock OpenAI-compatible model answering `now` after `latency`.
async fn mock_model(latency: Duration) -> anyhow::Result<(libos_tests::MockServer, ModelRouter)> {
    use libos_runtime::{HttpConfig, HttpModel, RetryPolicy};
    use libos_tests::{MockServer, Reply};

    let server = MockServer::start(Vec::new()).await;
    server.always(Reply::tool_call("now", serde_json::json!({})).delayed(latency));
    let model = HttpModel::new(HttpConfig {
        timeout: Duration::from_secs(30),
        retry: RetryPolicy::default(),
        ..HttpConfig::new("default", &server.base_url(), "mock")
    })?;
    Ok((server, ModelRouter::default().with_override(Arc::new(model))))
}

/// Spawns `processes` assistants that each run `each` quanta (then their budget ends them).
fn spawn_quanta(kernel: &Kernel, processes: usize, each: usize) -> anyhow::Result<()> {
    use libos_kernel::budget::Budget;

    let images = ImageSet::shipped()?;
    let image = images.get("assistant")?;
    let digest = kernel.register_image(&image.name, &image.version, &image.source)?;
    let budget = Budget::parse([format!("quanta={each}").as_str()]).map_err(anyhow::Error::msg)?;
    for i in 0..processes {
        kernel.spawn_with_grants(
            &SpawnSpec {
                image: digest.clone(),
                goal: format!("node work {i}"),
                workspace: std::env::temp_dir(),
                parent: None,
                priority: 0,
                actor: Actor::operator(),
                budget,
            },
            &image.grants,
        )?;
    }
    Ok(())
}

/// Quanta/s with 1, 2 and 4 scheduler nodes sharing one PostgreSQL store,
/// each node a kernel with its own session and a scheduler of `concurrency`,
/// against a mock model that answers after 100 ms.
async fn nodes(processes: usize, each: usize, concurrency: usize) -> anyhow::Result<()> {
    use libos_runtime::{Scheduler, SchedulerConfig};

    let latency = Duration::from_millis(100);
    let (_server, router) = mock_model(latency).await?;
    println!("scenario: scheduler nodes sharing one PostgreSQL store");
    println!("machine: {}", machine());
    println!(
        "parameters: {processes} processes x {each} quanta, mock model latency {} ms, concurrency {concurrency} per node",
        latency.as_millis()
    );
    for n in [1usize, 2, 4] {
        let schema = postgres_schema()?;
        let location = StoreLocation::Url(schema.url());
        let kernels: Vec<Kernel> =
            (0..n).map(|_| Kernel::open(&location, OpenMode::Create)).collect::<Result<_, _>>()?;
        spawn_quanta(&kernels[0], processes, each)?;
        let t = Instant::now();
        let mut runs = tokio::task::JoinSet::new();
        for k in &kernels {
            let env = quantum::env(k.clone(), router.clone(), QuantumPolicy::default());
            let config = SchedulerConfig { until_idle: true, concurrency, ..SchedulerConfig::default() };
            runs.spawn(async move { Scheduler::new(env, config).run(std::future::pending()).await });
        }
        let mut summaries = Vec::new();
        while let Some(done) = runs.join_next().await {
            summaries.push(done??);
        }
        let wall = t.elapsed();
        let quanta: u64 = summaries.iter().map(|s| s.quanta).sum();
        let ideal = (n * concurrency) as f64 / latency.as_secs_f64();
        let achieved = quanta as f64 / wall.as_secs_f64();
        // What the sealers had not chained as the last node stopped, then all of it.
        let waiting = kernels[0].audit_verify(None)?.unsealed;
        kernels[0].seal_audit()?;
        let verified = kernels[0].audit_verify(None)?;
        println!(
            "result: {n} node(s): {quanta} quanta in {:.2} s = {achieved:.0} quanta/s (ideal {ideal:.0}, {:.0}%); \
             per node {:?}; audit chain {} records ({waiting} waiting for sealing at the end), intact: {}",
            wall.as_secs_f64(),
            achieved / ideal * 100.0,
            summaries.iter().map(|s| s.quanta).collect::<Vec<_>>(),
            verified.records,
            verified.ok()
        );
    }
    Ok(())
}

/// A node dies holding leases (its scheduler stops without releasing
/// them, as under SIGKILL); another node, running all along, takes its
/// processes over once their leases lapse. Reports the time from the death
/// to each taken-over process's next lease, for a `ttl_s` lease.
async fn takeover(ttl_s: usize) -> anyhow::Result<()> {
    use libos_runtime::{Scheduler, SchedulerConfig};

    let ttl = Duration::from_secs(ttl_s as u64);
    let (_server, router) = mock_model(Duration::from_millis(100)).await?;
    let schema = postgres_schema()?;
    let location = StoreLocation::Url(schema.url());
    let (a, b) = (Kernel::open(&location, OpenMode::Create)?, Kernel::open(&location, OpenMode::Create)?);
    spawn_quanta(&a, 16, 1000)?;
    let scheduler = |k: &Kernel| {
        let env = quantum::env(k.clone(), router.clone(), QuantumPolicy::default());
        Scheduler::new(env, SchedulerConfig { concurrency: 8, lease_ttl: ttl, ..SchedulerConfig::default() })
    };
    let (sa, sb) = (scheduler(&a), scheduler(&b));
    let a_id = sa.id().clone();
    let (stop_b, b_stopped) = tokio::sync::oneshot::channel::<()>();
    let node_a = tokio::spawn(async move { sa.run(std::future::pending()).await });
    let node_b = tokio::spawn(async move {
        sb.run(async {
            let _ = b_stopped.await;
        })
        .await
    });
    // Let both work for a while (and renew their leases), then kill A.
    tokio::time::sleep(ttl * 2).await;
    let held: Vec<libos_kernel::Pid> = a.leased_by(&a_id)?.into_iter().map(|(pid, _)| pid).collect();
    node_a.abort();
    let died = libos_kernel::clock::system_now();
    let _ = node_a.await;
    // Wait until each of A's processes has been leased by B.
    let mut taken: Vec<Duration> = Vec::new();
    for pid in &held {
        loop {
            let records = b.audit(&libos_kernel::AuditFilter { pid: Some(*pid), ..Default::default() })?;
            if let Some(r) = records.iter().find(|r| r.at > died && r.action.is(KernelAction::Lease)) {
                taken.push(r.at.since(died));
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = stop_b.send(());
    node_b.await??;
    taken.sort();
    println!("scenario: takeover after a node dies");
    println!("machine: {}", machine());
    println!(
        "parameters: two nodes on one PostgreSQL store, 16 busy processes, lease ttl {ttl_s} s (renewed every third), \
         mock model 100 ms; node A stopped without releasing its {} leases",
        held.len()
    );
    println!(
        "result: A's processes leased again by B after {:.2} s (first) to {:.2} s (last) from A's death",
        taken.first().map_or(0.0, Duration::as_secs_f64),
        taken.last().map_or(0.0, Duration::as_secs_f64)
    );
    Ok(())
}

/// An idle scheduler on an empty store: memory and CPU over `seconds`.
async fn idle(seconds: u64) -> anyhow::Result<()> {
    use libos_runtime::{Scheduler, SchedulerConfig};

    let dir = tempfile::tempdir()?;
    let kernel = Kernel::open(&StoreLocation::File(dir.path().join("bench.db")), OpenMode::Create)?;
    let router = ModelRouter::default().with_override(Arc::new(NOW));
    let env = quantum::env(kernel, router, QuantumPolicy::default());
    let cpu_before = cpu_time();
    let t = Instant::now();
    Scheduler::new(env, SchedulerConfig::default()).run(tokio::time::sleep(Duration::from_secs(seconds))).await?;
    let wall = t.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    println!("scenario: idle scheduler");
    println!("machine: {}", machine());
    println!("parameters: one scheduler, default poll (20 ms), an empty file store, {seconds} s");
    println!(
        "result: RSS {:.1} MiB; CPU {} ms in {:.1} s = {:.2}% of one core",
        rss_mib(),
        cpu.as_millis(),
        wall.as_secs_f64(),
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
    );
    Ok(())
}

/// A comma-separated list of sizes, e.g. `10,1000,10000`, ascending.
fn levels(text: &str) -> anyhow::Result<Vec<usize>> {
    let levels: Vec<usize> = text
        .split(',')
        .map(|l| l.trim().replace('_', "").parse().with_context(|| format!("not a size: {l:?}")))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(levels.windows(2).all(|w| w[0] < w[1]), "levels must ascend: {text}");
    Ok(levels)
}

fn durability(args: &[String], i: usize) -> anyhow::Result<Durability> {
    args.get(i).map_or(Ok(Durability::Normal), |a| Durability::parse(a).map_err(anyhow::Error::msg))
}

fn arg(args: &[String], i: usize, default: usize) -> anyhow::Result<usize> {
    args.get(i).map_or(Ok(default), |a| a.parse().with_context(|| format!("`{a}` is not a number")))
}

fn main() -> anyhow::Result<()> {
    // The `shell` scenario uses this binary as the sandbox's launcher.
    if libos_sandbox::launch::invoked() {
        libos_sandbox::launch::main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("quantum") => {
            rt.block_on(quantum_overhead(arg(&args, 1, 100)?, arg(&args, 2, 50)?, durability(&args, 3)?))
        }
        Some("appends") => appends::appends(arg(&args, 1, 64)?, arg(&args, 2, 2000)?, durability(&args, 3)?),
        Some("age") => rt.block_on(age::by_age(arg(&args, 1, 10_000)?)),
        Some("age-of") => {
            let growth = age::Growth::parse(args.get(1).map_or("messages", String::as_str))?;
            let levels = levels(args.get(2).map_or("10,1000,10000", String::as_str))?;
            rt.block_on(age::by_size(growth, &levels))
        }
        Some("verify") => verify_speed(arg(&args, 1, 200_000)?),
        Some("wake") => rt.block_on(wake_latency(arg(&args, 1, 200)?, false)),
        Some("wake-postgres") => rt.block_on(wake_latency(arg(&args, 1, 200)?, true)),
        Some("spawn") => spawns(arg(&args, 1, 50_000)?),
        Some("parked") => rt.block_on(parked(arg(&args, 1, 100_000)?, arg(&args, 2, 200)?)),
        Some("mock") => rt.block_on(mock_throughput(arg(&args, 1, 1000)?, arg(&args, 2, 10)?, arg(&args, 3, 256)?)),
        Some("idle") => rt.block_on(idle(arg(&args, 1, 10)? as u64)),
        Some("nodes") => rt.block_on(nodes(arg(&args, 1, 64)?, arg(&args, 2, 20)?, arg(&args, 3, 16)?)),
        Some("takeover") => rt.block_on(takeover(arg(&args, 1, 3)?)),
        Some("shell") => shell::sandbox_cost(arg(&args, 1, 500)?),
        Some("mcp") => rt.block_on(mcp::overhead(arg(&args, 1, 300)?)),
        Some("search") => rt.block_on(search::at_scale(arg(&args, 1, 100_000)?, arg(&args, 2, 1000)?)),
        Some("langgraph") => rt.block_on(langgraph::side_by_side(arg(&args, 1, 100)?, arg(&args, 2, 10)?)),
        Some("scripted") => rt.block_on(scripted::scripted_run(arg(&args, 1, 1000)?, arg(&args, 2, 10)?)),
        Some("calls") => {
            rt.block_on(calls::call_modes(arg(&args, 1, 20)?, args.get(2).map_or("schema,text,native", String::as_str)))
        }
        _ => anyhow::bail!(
            "usage: libos-bench quantum [P] [Q] [normal|full] | appends [WRITERS] [EACH] [normal|full] | age [QUANTA] | age-of messages|memory|audit [LEVELS] | verify [RECORDS] | wake [APPROVALS] | wake-postgres [APPROVALS] | spawn [N] | parked [N] [WAKES] \
             | mock [P] [Q] [CONCURRENCY] | idle [SECONDS] | nodes [P] [Q] [CONCURRENCY] | takeover [TTL_SECONDS] | shell [RUNS] | mcp [SAMPLES] | calls [GOALS] [MODES] | scripted [AGENTS] [QUANTA] | langgraph [AGENTS] [CALLS] | search [OBJECTS] [PROCESSES]"
        ),
    }
}
