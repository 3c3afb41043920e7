//! JSON shapes printed by `--json`. Field names are stable: scripts rely on them.

use libos_kernel::budget::{self, Budget, Dimension};
use libos_kernel::{AuditRecord, ProcState, ProcessInfo, Timestamp, WaitOn};
use serde_json::{Value, json};

/// A process.
pub fn process(p: &ProcessInfo) -> Value {
    json!({
        "pid": p.pid.get(),
        "ppid": p.ppid.map(|x| x.get()),
        "image": p.image,
        "image_digest": p.image_digest.0,
        "goal": p.goal,
        "workspace": p.workspace.to_string_lossy(),
        "state": p.state.name(),
        "state_detail": state_detail(&p.state),
        "priority": p.priority,
        "generation": p.generation.0,
        "usage": {
            "quanta": p.usage.quanta,
            "model_calls": p.usage.model_calls,
            "tokens_in": p.usage.tokens_in,
            "tokens_out": p.usage.tokens_out,
            "tokens_estimated": p.usage.tokens_estimated,
            "tool_calls": p.usage.tool_calls,
            "cost_usd": p.usage.cost_micros as f64 / 1e6,
            "children": p.usage.children,
        },
        "budget": budget_json(&p.budget),
        "held_for_children": budget::amounts_to_json(&p.held_for_children()),
        "budget_left": budget_json(&p.budget.remaining(
            &budget::amounts(&p.usage, Timestamp::now().since(p.created_at)),
            &p.held_for_children()
        )),
        "created_at": p.created_at.to_rfc3339(),
        "updated_at": p.updated_at.to_rfc3339(),
    })
}

/// A budget by dimension (cost in USD, wall time in seconds); unlimited dimensions are absent.
fn budget_json(b: &Budget) -> Value {
    let mut map = serde_json::Map::new();
    for d in Dimension::ALL {
        if let Some(v) = b.get(d) {
            let v = if d == Dimension::Cost { json!(v as f64 / 1e6) } else { json!(v) };
            map.insert(d.as_str().to_string(), v);
        }
    }
    Value::Object(map)
}

/// The data of a state.
pub fn state_detail(s: &ProcState) -> Value {
    match s {
        ProcState::Runnable { not_before } => json!({"not_before": not_before.map(|t| t.to_rfc3339())}),
        ProcState::Running { lease } => json!({
            "owner": lease.owner.0,
            "expires_at": lease.expires_at.to_rfc3339(),
            "quantum": lease.quantum,
        }),
        ProcState::Waiting { on } => json!({"on": wait(on)}),
        ProcState::Paused { was } => json!({"was": {"state": was.name(), "detail": state_detail(was)}}),
        ProcState::Exited { code, result } => json!({"code": code, "result": result}),
        ProcState::Failed { kind, error } => json!({"kind": kind.as_str(), "error": error}),
        ProcState::Killed { by, reason } => json!({"by": by.to_string(), "reason": reason}),
    }
}

fn wait(on: &WaitOn) -> Value {
    match on {
        WaitOn::Human(id) => json!({"human": id.get()}),
        WaitOn::Child(p) => json!({"child": p.map(|p| p.get())}),
        WaitOn::Message(f) => json!({"message": f.to_string()}),
        WaitOn::Timer(t) => json!({"timer": t.to_rfc3339()}),
    }
}

/// An audit record, every field.
pub fn audit(r: &AuditRecord) -> Value {
    json!({
        "seq": r.seq.get(),
        "at": r.at.to_rfc3339(),
        "actor": r.actor,
        "kind": r.kind,
        "action": r.action,
        "pid": r.pid.map(|p| p.get()),
        "args": serde_json::from_str::<Value>(&r.args).unwrap_or(Value::String(r.args.clone())),
        "args_sha256": r.args_sha256,
        "decision": r.decision,
        "grant": r.grant,
        "outcome": r.outcome,
        "result_digest": r.result_digest,
        "detail": r.detail,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    })
}
