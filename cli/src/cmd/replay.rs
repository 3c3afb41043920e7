//! `libos replay PID`.

use libos_kernel::OpenMode;
use libos_runtime::replay::{ProcessReplay, replay_with};
use serde_json::json;

use crate::args::ReplayArgs;
use crate::ctx::{Ctx, parse_pid};
use crate::render::{self, one_line};

fn line(p: &ProcessReplay) -> String {
    let head = format!(
        "pid {} ({}) -> replay pid {}",
        p.original,
        p.image,
        p.replay.map_or_else(|| "-".to_string(), |r| r.to_string())
    );
    match p.first_difference() {
        None if p.original_end == p.replay_end => {
            format!("{head}: {} calls, same sequence, ended {} as the original", p.original_calls.len(), p.replay_end)
        }
        None => format!(
            "{head}: same {} calls, but ended {} where the original ended {}",
            p.original_calls.len(),
            p.replay_end,
            p.original_end
        ),
        Some(i) => format!(
            "{head}: diverged at call {}: the original made `{}`, the replay `{}`",
            i + 1,
            p.original_calls.get(i).map_or_else(|| "nothing".to_string(), ToString::to_string),
            p.replay_calls.get(i).map_or_else(|| "nothing".to_string(), ToString::to_string)
        ),
    }
}

/// Replays and reports; fails (exit 1) when the replay diverged.
pub async fn run(ctx: &Ctx, args: &ReplayArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    // The run's MCP tools are listed (their schemas decide what parses) but
    // never called: the replay answers their calls from the record.
    let config = ctx.config()?;
    let offline = crate::mcp_run::offline(&config)?;
    let names = crate::mcp_run::named_by_tree(&kernel, pid, &offline);
    let hub = crate::cmd::mcp::hub(ctx, &config)?;
    let tools = crate::mcp_run::list(hub, &names, &config.image_dirs, offline.clone()).await?;
    let report = replay_with(&kernel, pid, &tools.registry).await.map_err(anyhow::Error::msg);
    tools.stop().await;
    let report = report?;
    if args.json {
        let out: Vec<_> = report
            .processes
            .iter()
            .map(|p| {
                json!({
                    "original": p.original.get(),
                    "replay": p.replay.map(|r| r.get()),
                    "image": p.image,
                    "calls": p.original_calls.len(),
                    "replay_calls": p.replay_calls.len(),
                    "first_difference": p.first_difference(),
                    "original_end": p.original_end,
                    "replay_end": p.replay_end,
                    "matches": p.matches(),
                })
            })
            .collect();
        outln!("{}", render::json(&json!({"matches": report.matches(), "processes": out}))?);
    } else {
        outln!(
            "replay of pid {pid} and {} descendant{} in a scratch store, on the recorded model answers",
            report.processes.len() - 1,
            if report.processes.len() == 2 { "" } else { "s" }
        );
        for p in &report.processes {
            outln!("{}", one_line(&line(p)));
        }
    }
    anyhow::ensure!(report.matches(), "the replay diverged from the original run");
    if !args.json {
        outln!("the replay matches the original, call for call");
    }
    Ok(())
}
