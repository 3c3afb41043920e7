//! The JSON shapes of libos: what the CLI prints with `--json` and what the
//! HTTP API returns. Field names are stable: scripts rely on them.

use std::collections::BTreeMap;

use libos_kernel::audit::AuditDecision;
use libos_kernel::audit::trace::{LeaseEnd, LeaseTrace};
use libos_kernel::budget::{self, Budget, Dimension};
use libos_kernel::caps::Grant;
use libos_kernel::ipc::{Message, Request, RequestKind, ToolHints};
use libos_kernel::memory::{Handle, Object};
use libos_kernel::{
    AuditRecord, Decided, GrantStatus, ModelCallRow, MsgId, Pid, ProcState, ProcessInfo, TranscriptEntry, VerifyReport,
    WaitOn,
};
use serde_json::{Value, json};

/// Text that should hold JSON, as JSON (or as the string it is).
fn json_text(text: &str) -> Value {
    serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

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
            &budget::amounts(&p.usage, libos_kernel::clock::system_now().since(p.created_at)),
            &p.held_for_children()
        )),
        "created_at": p.created_at.to_rfc3339(),
        "updated_at": p.updated_at.to_rfc3339(),
    })
}

/// A budget by dimension (cost in USD, wall time in seconds); unlimited dimensions are absent.
pub fn budget_json(b: &Budget) -> Value {
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
        "actor": r.actor.to_string(),
        "kind": r.kind.as_str(),
        "action": r.action.as_str(),
        "pid": r.pid.map(|p| p.get()),
        "args": json_text(&r.args),
        "args_sha256": r.args_sha256,
        "decision": r.decision.map(AuditDecision::as_str),
        "grant": r.grant,
        "outcome": r.outcome.as_str(),
        "result_digest": r.result_digest,
        "detail": r.detail,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    })
}

/// An approval or question waiting for a person (or decided).
pub fn request(r: &Request) -> Value {
    let (kind, resource, right, question) = match &r.kind {
        RequestKind::Approval { resource, right } => {
            ("approval", Some(resource.to_string()), Some(right.as_str()), None)
        }
        RequestKind::Question { text } => ("question", None, None, Some(text.clone())),
    };
    json!({
        "id": r.id.get(),
        "pid": r.pid.get(),
        "image": r.image,
        "goal": r.goal,
        "kind": kind,
        "tool": r.tool,
        "args": json_text(&r.args),
        "args_sha256": r.args_sha256,
        "resource": resource,
        "right": right,
        "question": question,
        "hints": r.hints.as_ref().map(hints),
        "status": r.status.name(),
        "created_at": r.created_at.to_rfc3339(),
    })
}

/// A parked tool's hints: what its source claims, labelled so, never authority.
pub fn hints(h: &ToolHints) -> Value {
    json!({
        "note": "the server's claims, not authority",
        "title": h.title,
        "read_only": h.read_only,
        "destructive": h.destructive,
        "idempotent": h.idempotent,
        "open_world": h.open_world,
        "summary": h.label(),
    })
}

/// A grant and where it stands.
pub fn grant(g: &Grant, status: GrantStatus) -> Value {
    json!({
        "id": g.id.get(),
        "holder": g.holder.get(),
        "resource": g.resource.to_string(),
        "rights": g.rights.to_string(),
        "effect": g.effect.as_str(),
        "uses_left": g.uses_left,
        "expires_at": g.expires_at.map(|t| t.to_rfc3339()),
        "delegable": g.delegable,
        "parent": g.parent.map(|p| p.get()),
        "granted_by": g.granted_by.to_string(),
        "status": status.as_str(),
    })
}

/// A message in an inbox.
pub fn message(m: &Message) -> Value {
    json!({
        "id": m.id.get(),
        "from": m.from.to_string(),
        "to": m.to.get(),
        "kind": m.kind.as_str(),
        "channel": m.channel,
        "correlation_id": m.correlation_id,
        "reply_to": m.reply_to.map(|r| r.get()),
        "body": m.body,
        "sent_at": m.sent_at.to_rfc3339(),
        "read_at": m.read_at.map(|t| t.to_rfc3339()),
    })
}

/// An entry of a process's memory view (content not included).
pub fn handle(h: &Handle) -> Value {
    json!({
        "oid": h.oid.get(), "namespace": h.namespace, "name": h.name, "kind": h.kind,
        "version": h.version, "bytes": h.bytes, "rights": h.rights.to_string(),
        "pinned": h.pinned, "granted_by": h.granted_by.to_string(),
    })
}

/// One hit of a memory search.
pub fn search_hit(h: &libos_kernel::memory::SearchHit) -> Value {
    json!({
        "oid": h.oid.get(), "namespace": h.namespace, "name": h.name, "kind": h.kind,
        "snippet": h.snippet, "score": h.score,
    })
}

/// A memory object, content included.
pub fn object(o: &Object) -> Value {
    json!({
        "oid": o.oid.get(), "namespace": o.namespace, "name": o.name, "kind": o.kind,
        "version": o.version, "owner": o.owner.get(), "content": o.content,
        "created_at": o.created_at.to_rfc3339(), "updated_at": o.updated_at.to_rfc3339(),
    })
}

/// One model call of a quantum.
pub fn model_call(c: &ModelCallRow) -> Value {
    json!({
        "id": c.id.get(),
        "attempt": c.record.attempt,
        "at": c.at.to_rfc3339(),
        "profile": c.record.profile,
        "model": c.record.model,
        "request_digest": c.record.request_digest,
        "request_bytes": c.record.request_bytes,
        "response": json_text(&c.record.response),
        "rationale": c.record.rationale,
        "tokens_in": c.record.usage.input,
        "tokens_out": c.record.usage.output,
        "tokens_estimated": c.record.usage.estimated,
        "retry": c.record.is_attempt(),
        "latency_ms": c.record.latency.as_secs_f64() * 1000.0,
        "outcome": c.record.outcome.as_str(),
        "error": c.record.error,
        "call_mode": c.record.detail.call_mode,
        "finish_reason": c.record.detail.finish_reason,
        "sent": c.record.detail.sent.as_deref().map(json_text),
        "usage_detail": c.record.detail.usage.as_deref().map(json_text),
    })
}

/// One tool call and its result.
pub fn tool_call(e: &TranscriptEntry) -> Value {
    json!({
        "call_id": e.call.call_id,
        "tool": e.call.tool,
        "args": serde_json::from_str::<Value>(&e.call.args).unwrap_or_default(),
        "rationale": e.call.rationale,
        "outcome": e.result.outcome.as_str(),
        "result": e.result.content,
        "at": e.at.to_rfc3339(),
    })
}

/// One lease of a quantum, as the audit log tells it: when, how it ended,
/// the approved call of an earlier quantum it re-ran, the decisions on the
/// requests it parked on, and how its wait ended.
pub fn lease(l: &LeaseTrace) -> Value {
    let decisions: Vec<Value> = l
        .decisions
        .iter()
        .map(|d| {
            json!({
                "request": d.request.get(),
                "verdict": d.verdict.as_str(),
                "by": d.by.to_string(),
                "at": d.at.to_rfc3339(),
                "outcome": d.outcome.as_str(),
                "detail": d.detail,
            })
        })
        .collect();
    json!({
        "at": l.at.to_rfc3339(),
        "ended": l.ended.as_ref().map(LeaseEnd::as_str),
        "ended_detail": l.ended.as_ref().and_then(LeaseEnd::detail),
        "resumed": l.resumed,
        "decisions": decisions,
        "woke": l.woke.as_ref().map(|w| json!({"why": w.why, "at": w.at.to_rfc3339()})),
    })
}

/// A process and its transcript, quantum by quantum, every number that
/// was leased: its leases, model calls (with rejections, errors and
/// retried attempts) and tool calls with their results.
pub fn transcript(
    p: &ProcessInfo,
    calls: &[ModelCallRow],
    entries: &[TranscriptEntry],
    leases: &[LeaseTrace],
) -> Value {
    #[derive(Default)]
    struct Quantum {
        leases: Vec<Value>,
        model_calls: Vec<Value>,
        tool_calls: Vec<Value>,
    }
    let mut quanta: BTreeMap<u64, Quantum> = BTreeMap::new();
    for l in leases {
        quanta.entry(l.quantum).or_default().leases.push(lease(l));
    }
    for c in calls {
        quanta.entry(c.quantum).or_default().model_calls.push(model_call(c));
    }
    for e in entries {
        quanta.entry(e.quantum).or_default().tool_calls.push(tool_call(e));
    }
    let list: Vec<Value> = quanta
        .into_iter()
        .map(|(n, q)| {
            json!({"quantum": n, "leases": q.leases, "model_calls": q.model_calls, "tool_calls": q.tool_calls})
        })
        .collect();
    json!({"process": process(p), "quanta": list})
}

/// An image as `libos images --json` (and the Python package) shows it.
pub fn image(i: &libos_images::Image) -> Value {
    json!({
        "name": i.name,
        "version": i.version,
        "description": i.description,
        "model": i.model,
        "repair_model": i.repair_model,
        "tools": i.tools.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "grants": i.grants.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "budget": budget_json(&i.budget),
        "context": {"token_budget": i.context.token_budget, "transcript_window": i.context.transcript_window},
    })
}

/// The result of verifying the audit chain: `records` in the sealed chain,
/// and `unsealed`, how many committed records wait for sealing (on
/// PostgreSQL; each was checked against its digest).
pub fn verify(report: &VerifyReport) -> Value {
    json!({
        "ok": report.ok(),
        "records": report.records,
        "unsealed": report.unsealed,
        "head": report.head,
        "first_bad_seq": report.broken.as_ref().map(|b| b.seq.get()),
        "problem": report.broken.as_ref().map(|b| b.problem.clone()),
    })
}

/// Where a process stands after a pause or a resume.
pub fn state_change(pid: Pid, state: &ProcState) -> Value {
    json!({"pid": pid.get(), "state": state.name(), "state_detail": state_detail(state)})
}

/// The processes a kill ended.
pub fn killed(pids: &[Pid]) -> Value {
    json!({"killed": pids.iter().map(|p| p.get()).collect::<Vec<_>>()})
}

/// A decided request, and the grant `always` installed.
pub fn decided(d: &Decided) -> Value {
    let mut out = request(&d.request);
    out["grant"] = json!(d.grant.map(|g| g.get()));
    out
}

/// A message sent.
pub fn sent(id: MsgId, to: Pid) -> Value {
    json!({"id": id.get(), "to": to.get()})
}
