//! A replay's report as the dict Python gets.

use libos_runtime::replay::{CallSig, ReplayReport};
use serde_json::{Value, json};

fn call(c: &CallSig) -> Value {
    json!({
        "tool": c.tool.as_str(),
        "args_sha256": c.args_sha256,
        "decision": c.decision.map(|d| d.as_str()),
        "outcome": c.outcome.as_str(),
    })
}

/// ``{"matches", "processes": [{"pid", "image", "replay", "matches",
/// "first_difference", "original_end", "replay_end", "original_calls",
/// "replay_calls"}]}``.
pub fn report(r: &ReplayReport) -> Value {
    let processes: Vec<Value> = r
        .processes
        .iter()
        .map(|p| {
            json!({
                "pid": p.original.get(),
                "image": p.image,
                "replay": p.replay.map(|r| r.get()),
                "matches": p.matches(),
                "first_difference": p.first_difference(),
                "original_end": p.original_end,
                "replay_end": p.replay_end,
                "original_calls": p.original_calls.iter().map(call).collect::<Vec<_>>(),
                "replay_calls": p.replay_calls.iter().map(call).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"matches": r.matches(), "processes": processes})
}
