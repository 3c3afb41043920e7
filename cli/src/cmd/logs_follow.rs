//! `libos logs PID --follow`: the transcript so far, then each quantum as
//! it ends, until the process ends (or Ctrl-C).
//!
//! A quantum is shown once it is settled, in order: when it has its tool
//! call's result, or when a later quantum does (a quantum whose answers
//! were all rejected, or whose model call failed, has none), or when the
//! process has ended. A call parked for approval is a quantum without its
//! result until the operator decides it; meanwhile the process's waiting
//! state is shown, and the quantum follows with its result once decided.

use std::time::Duration;

use libos_console::wire;
use libos_kernel::{Kernel, Pid, ProcState};
use serde_json::json;

use super::logs::{Quantum, print_end, print_head, print_quantum, quanta, ran_in};
use crate::ctx;
use crate::render::{self, one_line};

/// How often the store is read for new quanta.
const POLL: Duration = Duration::from_millis(200);

/// Follows `pid` until it ends or Ctrl-C.
pub async fn run(kernel: &Kernel, pid: Pid, json: bool) -> anyhow::Result<()> {
    let stop = ctx::interrupted();
    tokio::pin!(stop);
    let mut shown = 0u64;
    let mut last_state: Option<String> = None;
    let mut first = true;
    loop {
        let process = kernel.process(pid)?;
        let calls = kernel.model_calls(pid)?;
        let (entries, _) = kernel.transcript(pid, None)?;
        let leases = kernel.leases(pid)?;
        let ended = process.state.is_terminal();
        if first && !json {
            print_head(&process);
        }
        first = false;
        let quanta = quanta(&leases, &calls, &entries);
        let ran_in = ran_in(&leases);
        let last_with_result = quanta.iter().rev().find(|(_, q)| !q.entries.is_empty()).map_or(0, |(n, _)| *n);
        for (n, q) in quanta.range(shown + 1..) {
            if !(ended || !q.entries.is_empty() || *n < last_with_result) {
                break;
            }
            if json {
                outln!("{}", render::json_line(&quantum_json(*n, q))?);
            } else {
                print_quantum(*n, q, ran_in.get(n).copied());
            }
            shown = *n;
        }
        if ended {
            if json {
                outln!("{}", render::json_line(&json!({"process": wire::process(&process)}))?);
            } else {
                print_end(&process);
            }
            return Ok(());
        }
        // Where a parked or paused process is, once per change.
        let state = process.state.to_string();
        if matches!(process.state, ProcState::Waiting { .. } | ProcState::Paused { .. })
            && last_state.as_ref() != Some(&state)
            && !json
        {
            outln!();
            outln!("now {}", one_line(&state));
        }
        last_state = Some(state);
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One quantum as `logs --json` lists it.
fn quantum_json(n: u64, q: &Quantum<'_>) -> serde_json::Value {
    json!({
        "quantum": n,
        "leases": q.leases.iter().map(|l| wire::lease(l)).collect::<Vec<_>>(),
        "model_calls": q.calls.iter().map(|c| wire::model_call(c)).collect::<Vec<_>>(),
        "tool_calls": q.entries.iter().map(|e| wire::tool_call(e)).collect::<Vec<_>>(),
    })
}
