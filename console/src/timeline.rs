//! A process's quanta as the console's process view shows them: in each,
//! its model calls (with the rationale, rejections and errors), the tool
//! call, the decisions the audit log holds about it (the capability check,
//! a park, a person's approval or denial, the effect's intent), its result,
//! and what the process waits on when it is parked on that call.
//!
//! The model calls, transcript entries and the parked call carry their
//! quantum's number; audit records do not, so each is placed by time: in
//! the first quantum whose last model call or result is not older than the
//! record (a quantum's records commit with its model call, an approval and
//! the approved call's result come after the park and before the result),
//! the last quantum for anything later (a kill), and in a group of its own
//! for the operator's records before the first quantum (the spawn). A
//! parked call's quantum has no result yet: it is where the wait is shown.
//! Leases and yields are left out: every quantum has them.

use std::collections::BTreeMap;

use libos_kernel::audit::{AuditAction, AuditDecision, AuditKind, KernelAction};
use libos_kernel::{
    AuditRecord, ModelCallRow, ParkedCall, ProcState, ProcessInfo, Timestamp, TranscriptEntry, ipc::Request,
};
use serde_json::{Value, json};

use crate::wire;

/// Most bytes of a tool result shown in the timeline (`/transcript` has them whole).
const MAX_RESULT_BYTES: usize = 8 * 1024;

/// What the timeline is built from, as read from the kernel.
pub(crate) struct Sources<'a> {
    pub process: &'a ProcessInfo,
    pub calls: &'a [ModelCallRow],
    pub entries: &'a [TranscriptEntry],
    /// The process's audit records, in order.
    pub records: &'a [AuditRecord],
    pub parked: Option<&'a ParkedCall>,
    /// The request the parked call waits on, if any.
    pub request: Option<&'a Request>,
}

/// Where an event goes among those of its quantum at the same time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Model,
    Call,
    Record,
    Result,
    /// A state change commits with what caused it, and reads after it.
    State,
    Wait,
}

#[derive(Default)]
struct Quantum {
    /// The time of its last model call or result: records up to it are its.
    end: Option<Timestamp>,
    events: Vec<(Timestamp, Rank, i64, Value)>,
}

/// The timeline of the last `limit` quanta: `{process, quanta: [{quantum,
/// events}], total}`, where `total` counts every quantum (and the group
/// before the first, whose `quantum` is null).
pub(crate) fn timeline(s: &Sources<'_>, limit: usize) -> Value {
    let mut quanta: BTreeMap<u64, Quantum> = BTreeMap::new();
    for c in s.calls {
        let q = quanta.entry(c.quantum).or_default();
        q.end = q.end.max(Some(c.at));
        q.events.push((c.at, Rank::Model, c.id.get(), model_call(c)));
    }
    for e in s.entries {
        let q = quanta.entry(e.quantum).or_default();
        q.end = q.end.max(Some(e.at));
        q.events.push((e.at, Rank::Result, 0, result(e)));
    }
    if let Some(p) = s.parked {
        quanta.entry(p.quantum).or_default();
    }
    // The call, once per quantum: as completed, else as parked.
    for (n, q) in &mut quanta {
        let entry = s.entries.iter().rev().find(|e| e.quantum == *n);
        let call = entry.map(|e| &e.call).or(s.parked.filter(|p| p.quantum == *n).map(|p| &p.call));
        let Some(call) = call else { continue };
        let said = q.events.iter().any(|(_, r, _, v)| *r == Rank::Model && !v["rationale"].is_null());
        let at = q.events.iter().filter(|(_, r, _, _)| *r == Rank::Model).map(|(t, ..)| *t).max();
        let at = at.or(entry.map(|e| e.at)).unwrap_or(Timestamp(i64::MAX));
        let args = serde_json::from_str::<Value>(&call.args).unwrap_or(Value::Null);
        let rationale = if said { None } else { call.rationale.clone() };
        let mut event = json!({"kind": "tool_call", "tool": call.tool, "args": args, "rationale": rationale});
        if call.tool == "shell"
            && let Some(argv) = event["args"]["argv"].as_array()
        {
            let argv: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
            event["command_line"] = json!(crate::preview::command_line(&argv));
        }
        q.events.push((at, Rank::Call, 0, event));
    }
    let first_start = quanta.values().next().and_then(|q| q.events.iter().map(|(t, ..)| *t).min());
    let mut before = Vec::new();
    for r in
        s.records.iter().filter(|r| !matches!(r.action, AuditAction::Kernel(KernelAction::Lease | KernelAction::Yield)))
    {
        let own = matches!(r.kind, AuditKind::Tool | AuditKind::Effect);
        if !own && first_start.is_none_or(|t| r.at < t) {
            before.push(record(r));
            continue;
        }
        let target = quanta.values_mut().find(|q| q.end.is_some_and(|end| end >= r.at));
        let target = match target {
            Some(q) => q,
            None => match quanta.values_mut().next_back() {
                Some(q) => q,
                None => {
                    before.push(record(r));
                    continue;
                }
            },
        };
        let rank = if r.kind == AuditKind::State { Rank::State } else { Rank::Record };
        target.events.push((r.at, rank, r.seq.get(), record(r)));
    }
    if let (Some(p), Some(on)) = (s.parked, waiting_on(&s.process.state))
        && let Some(q) = quanta.get_mut(&p.quantum)
    {
        let request = s
            .request
            .map(|r| json!({"id": r.id.get(), "status": r.status.name(), "created_at": r.created_at.to_rfc3339()}));
        let event = json!({"kind": "wait", "on": on, "request": request, "approved": p.approved});
        q.events.push((Timestamp(i64::MAX), Rank::Wait, 0, event));
    }
    let mut groups: Vec<Value> = Vec::new();
    if !before.is_empty() {
        groups.push(json!({"quantum": null, "events": before}));
    }
    for (n, mut q) in quanta {
        q.events.sort_by_key(|(at, rank, n, _)| (*at, *rank, *n));
        let events: Vec<Value> = q.events.into_iter().map(|(.., v)| v).collect();
        groups.push(json!({"quantum": n, "events": events}));
    }
    let total = groups.len();
    let shown = groups.split_off(total.saturating_sub(limit));
    json!({"process": wire::process(s.process), "quanta": shown, "total": total})
}

/// What the process waits on, when it waits (paused while waiting included).
fn waiting_on(state: &ProcState) -> Option<Value> {
    match state {
        ProcState::Waiting { .. } => Some(wire::state_detail(state)["on"].clone()),
        ProcState::Paused { was } => waiting_on(was),
        _ => None,
    }
}

fn model_call(c: &ModelCallRow) -> Value {
    let m = &c.record;
    json!({
        "kind": "model_call",
        "at": c.at.to_rfc3339(),
        "attempt": m.attempt,
        "outcome": m.outcome.as_str(),
        "error": m.error,
        "rationale": m.rationale,
        "profile": m.profile,
        "model": m.model,
        "tokens_in": m.usage.input,
        "tokens_out": m.usage.output,
        "tokens_estimated": m.usage.estimated,
        "latency_ms": m.latency.as_secs_f64() * 1000.0,
        "finish_reason": m.detail.finish_reason,
    })
}

fn result(e: &TranscriptEntry) -> Value {
    let content = &e.result.content;
    let cut = content.floor_char_boundary(MAX_RESULT_BYTES);
    json!({
        "kind": "result",
        "at": e.at.to_rfc3339(),
        "outcome": e.result.outcome.as_str(),
        "content": &content[..cut],
        "bytes": content.len(),
        "truncated": cut < content.len(),
    })
}

/// A tool record of the process is the decision on its call; anything else
/// (an operator's action, the kernel's completion of a wait, a state change)
/// is shown as the record it is.
fn record(r: &AuditRecord) -> Value {
    let kind = if r.kind == AuditKind::Tool { "decision" } else { "record" };
    json!({
        "kind": kind,
        "seq": r.seq.get(),
        "at": r.at.to_rfc3339(),
        "actor": r.actor.to_string(),
        "record_kind": r.kind.as_str(),
        "action": r.action.as_str(),
        "decision": r.decision.map(AuditDecision::as_str),
        "grant": r.grant,
        "outcome": r.outcome.as_str(),
        "detail": r.detail,
    })
}
