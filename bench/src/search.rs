//! `search OBJECTS [PROCESSES]`: issue 19's memory search at scale.
//!
//! PROCESSES assistant processes each write OBJECTS / PROCESSES objects with
//! `memory_write` through real quanta (so the full-text index is kept by the
//! same triggers as in use), each object a dozen words drawn from a
//! vocabulary of 2,000; then one process's searches (two words each, any
//! matching) are timed through `Kernel::memory_search`, which runs the
//! same query the `memory_search` tool does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libos_kernel::Pid;
use libos_kernel::memory::SearchQuery;
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{
    ChatModel, ChatRequest, ChatResponse, ModelError, ModelRouter, RawToolCall, Scheduler, SchedulerConfig,
};

/// Distinct words objects are made of.
const VOCABULARY: u64 = 2_000;
/// Words per object.
const WORDS: u64 = 12;

/// A deterministic word: `w` then letters, so stemming leaves it alone.
fn word(n: u64) -> String {
    let mut s = String::from("w");
    let mut n = n % VOCABULARY;
    loop {
        s.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

/// A small, fast mixer (splitmix64) for choosing words.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes object number `call_index` of its process, then exits after `each`.
struct Writer {
    each: u64,
}

#[async_trait::async_trait]
impl ChatModel for Writer {
    fn profile(&self) -> &str {
        "writer"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let (pid, i) = (request.meta.pid.get() as u64, request.meta.call_index);
        let (name, arguments) = if i < self.each {
            let seed = mix(pid << 32 | i);
            let text: Vec<String> = (0..WORDS).map(|k| word(mix(seed + k))).collect();
            ("memory_write", serde_json::json!({"name": format!("note-{i}"), "content": text.join(" ")}).to_string())
        } else {
            ("exit", r#"{"result":"written"}"#.to_string())
        };
        Ok(ChatResponse {
            model: "writer".into(),
            content: None,
            tool_calls: vec![RawToolCall { id: format!("call_{i}"), name: name.into(), arguments }],
            usage: None,
            raw: "{}".into(),
            carry: None,
            info: Default::default(),
        })
    }
}

pub(crate) async fn at_scale(objects: usize, processes: usize) -> anyhow::Result<()> {
    anyhow::ensure!(processes >= 1 && objects >= processes, "need at least one object per process");
    let each = (objects / processes) as u64;
    let dir = tempfile::tempdir()?;
    let kernel = super::durable_kernel(dir.path(), processes, |i| format!("writer {i}"))?;
    let router = ModelRouter::default().with_override(Arc::new(Writer { each }));
    let env = quantum::env(kernel.clone(), router, QuantumPolicy::default());
    let config = SchedulerConfig { until_idle: true, concurrency: 16, ..SchedulerConfig::default() };
    let fill = Instant::now();
    let summary = Scheduler::new(env, config).run(std::future::pending()).await?;
    let fill = fill.elapsed();
    anyhow::ensure!(summary.finished.len() == processes, "{} of {processes} writers finished", summary.finished.len());
    let pid = Pid(1);
    let held = kernel.memory_view(pid)?.len();
    let mut samples = Vec::new();
    let mut hits = 0;
    for q in 0..300u64 {
        let query =
            SearchQuery::parse(&format!("{} {}", word(mix(q)), word(mix(q + 7_777)))).map_err(anyhow::Error::msg)?;
        let t = Instant::now();
        hits += kernel.memory_search(pid, &query, None, 10)?.len();
        samples.push(t.elapsed());
    }
    samples.sort();
    let p = |q| super::percentile(&samples, q).as_secs_f64() * 1e3;
    println!("scenario: memory search at scale");
    println!("machine: {}", super::machine());
    println!(
        "parameters: {} objects in the store ({processes} processes x {each}, {WORDS} words each from {VOCABULARY}), \
         the searcher's view {held} objects, 300 two-word queries, limit 10, SQLite file store",
        each * processes as u64
    );
    println!(
        "fill: {:.1} s ({:.0} objects/s, one quantum each)",
        fill.as_secs_f64(),
        objects as f64 / fill.as_secs_f64()
    );
    println!(
        "result: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.1} hits per query",
        p(0.50),
        p(0.99),
        samples.last().copied().unwrap_or(Duration::ZERO).as_secs_f64() * 1e3,
        hits as f64 / samples.len() as f64
    );
    Ok(())
}
