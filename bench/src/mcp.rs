//! `mcp N`: a quantum whose call is a local MCP tool, against the server's
//! own time for the same call. The server is `@modelcontextprotocol/server-everything`
//! (its `echo`), run in the sandbox as a run would: `LIBOS_BENCH_MCP_SERVER`
//! names its program, else `target/mcp-node/node_modules/.bin/mcp-server-everything`
//! (where the test suite installs it).
//!
//! Three sets of N, one after another: the server's time (`Hub::call`
//! directly), a quantum calling `everything__echo`, and a quantum calling
//! `now` (the quantum's own cost, with no external call). libos's overhead
//! on an MCP call is the MCP quantum less the server's time less the
//! `now` quantum: what dispatching through the registry (schema check,
//! grant check, intent record, the handler, the result) adds.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use libos_images::{Image, ImageSet};
use libos_kernel::caps::GrantSpec;
use libos_kernel::{Actor, Kernel, OpenMode, SchedulerId, SpawnSpec, StoreLocation};
use libos_mcp::{Hub, Target};
use libos_runtime::ModelRouter;
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_sandbox::{Launcher, Sandbox};
use libos_tools::Registry;

use crate::{InstantModel, machine, percentile};

const IMAGE: &str = r#"
name = "mcp-bench"
version = "1.0.0"
description = "Calls one MCP tool, again and again."
model = "default"
tools = ["now", "exit"]
mcp_tools = ["everything/echo"]
grants = ["exec mcp:everything/echo"]
system_prompt = "Echo."
"#;

fn server_program() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("LIBOS_BENCH_MCP_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/mcp-node/node_modules/.bin/mcp-server-everything"));
    let path = std::fs::canonicalize(&path).with_context(|| {
        format!(
            "no MCP server at {} (npm install --prefix target/mcp-node @modelcontextprotocol/server-everything, \
             or set LIBOS_BENCH_MCP_SERVER)",
            path.display()
        )
    })?;
    Ok(path)
}

fn stats(name: &str, t: &[Duration]) -> String {
    format!(
        "{name}: p50 {} us, p90 {} us, p99 {} us",
        percentile(t, 0.5).as_micros(),
        percentile(t, 0.9).as_micros(),
        percentile(t, 0.99).as_micros()
    )
}

/// Runs the scenario with `n` samples per set.
pub async fn overhead(n: usize) -> anyhow::Result<()> {
    let program = server_program()?;
    let dir = tempfile::tempdir()?;
    let ws = dir.path().canonicalize()?;
    let table: toml::Table =
        toml::from_str(&format!("[everything]\ncommand = {:?}\nargs = [\"stdio\"]\n", program.display().to_string()))?;
    let servers = libos_mcp::config::parse(&table, &ws).map_err(|e| anyhow::anyhow!("{e}"))?;
    let launcher = Launcher::find().or_else(|_| std::env::current_exe().map(Launcher::new))?;
    let sandbox = Sandbox::confined(launcher)?;
    let hub = Hub::new(servers, sandbox.clone(), vec![ws.join(".libos")]);
    let target = Target { server: "everything", workspace: &ws, pid: 1 };
    let echo = || serde_json::json!({"message": "hello"}).as_object().cloned().unwrap_or_default();

    // The server's own time (the first call starts it).
    hub.call(target, "echo", echo(), std::future::pending()).await?;
    let mut direct = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        hub.call(target, "echo", echo(), std::future::pending()).await?;
        direct.push(t.elapsed());
    }
    direct.sort();

    let mut registry = Registry::builtin().clone();
    let names: BTreeSet<String> = ["everything".to_string()].into();
    let notices = libos_runtime::mcp::register_servers(&mut registry, &hub, &names).await;
    anyhow::ensure!(notices.is_empty(), "the server could not be listed: {notices:?}");
    let image = Image::parse_with("bench:mcp-bench.toml", IMAGE, &registry)?;
    let mut catalog = ImageSet::default();
    catalog.insert(image.clone());

    let quanta = |tool: &'static str, args: &'static str| {
        let kernel = Kernel::open(&StoreLocation::File(ws.join(format!(".libos/{tool}.db"))), OpenMode::Create);
        let router = ModelRouter::default().with_override(Arc::new(InstantModel { tool, args }));
        (kernel, router)
    };
    let mut results = Vec::new();
    for (tool, args) in [("everything__echo", r#"{"message":"hello"}"#), ("now", "{}")] {
        let (kernel, router) = quanta(tool, args);
        let kernel = kernel?;
        let digest = kernel.register_image(&image.name, &image.version, &image.source)?;
        let grants: Vec<GrantSpec> = image.grants.clone();
        kernel.spawn_with_grants(
            &SpawnSpec {
                image: digest,
                goal: "echo".into(),
                workspace: ws.clone(),
                parent: None,
                priority: 0,
                actor: Actor::operator(),
                budget: libos_kernel::budget::Budget::unlimited(),
            },
            &grants,
        )?;
        let env = quantum::env_with_registry(
            kernel.clone(),
            router,
            QuantumPolicy::default(),
            catalog.clone(),
            sandbox.clone(),
            registry.clone(),
        );
        let owner = SchedulerId("bench".into());
        let mut samples = Vec::with_capacity(n);
        for i in 0..=n {
            let t = Instant::now();
            let lease = kernel.lease(&owner, Duration::from_secs(60), 1, &[])?.pop().context("nothing to lease")?;
            quantum::run(env.clone(), lease).await?;
            // The first quantum of each set warms the caches.
            if i > 0 {
                samples.push(t.elapsed());
            }
        }
        samples.sort();
        let (entries, _) = kernel.transcript(libos_kernel::Pid(1), None)?;
        anyhow::ensure!(
            entries.iter().all(|e| e.result.content.contains("hello") || tool == "now"),
            "a call failed: {:?}",
            entries.iter().find(|e| !e.result.content.contains("hello")).map(|e| &e.result.content)
        );
        results.push(samples);
    }
    hub.stop_all().await;
    let (mcp, now) = (&results[0], &results[1]);
    println!("scenario: a quantum whose call is a local MCP tool");
    println!("machine: {}", machine());
    println!(
        "parameters: {n} samples per set; server-everything `echo` over stdio in the sandbox ({}); \
         instant model; SQLite file store",
        program.display()
    );
    println!("result: {}", stats("server's own time (Hub::call)", &direct));
    println!("result: {}", stats("quantum calling everything__echo", mcp));
    println!("result: {}", stats("quantum calling now", now));
    let over = percentile(mcp, 0.5).saturating_sub(percentile(&direct, 0.5)).saturating_sub(percentile(now, 0.5));
    println!(
        "result: libos's overhead on an MCP call at p50: {} us (MCP quantum - server's time - `now` quantum)",
        over.as_micros()
    );
    Ok(())
}
