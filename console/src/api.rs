//! The JSON API: everything the CLI reads and every operator action, over
//! one kernel handle. Each handler is one kernel call (or a few reads) and
//! answers with the shapes in [`crate::wire`]; actions are taken as the
//! operator, exactly as the CLI takes them, so the audit log reads the same.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use libos_kernel::ipc::{MessageKind, NewMessage};
use libos_kernel::{
    Actor, AuditFilter, AuditSeq, ObjectId, Outcome, Pid, ProcessFilter, RequestId, Timestamp, Verdict,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::{Shared, preview, timeline, wire};

type Answer = Result<Json<Value>, ApiError>;

fn pid(text: &str) -> Result<Pid, ApiError> {
    text.parse().map_err(ApiError::bad_request)
}

fn request_id(text: &str) -> Result<RequestId, ApiError> {
    text.parse().map_err(ApiError::bad_request)
}

/// A JSON body; an empty one is the default.
fn body<T: DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Query parameters, with a bad one answered as a JSON error.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// Runs a kernel call off the async workers (SQLite blocks).
async fn blocking<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&libos_kernel::Kernel) -> Result<T, libos_kernel::KernelError> + Send + 'static,
) -> Result<T, ApiError> {
    let kernel = shared.kernel.clone();
    tokio::task::spawn_blocking(move || f(&kernel))
        .await
        .map_err(|e| ApiError::internal(format!("the request stopped: {e}")))?
        .map_err(ApiError::from)
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    all: bool,
}

/// `GET /api/processes[?all=true]`: live processes (all with `all`).
pub(crate) async fn processes(State(s): State<Shared>, q: Result<Query<ListQuery>, QueryRejection>) -> Answer {
    let q = query(q)?;
    let filter = if q.all { ProcessFilter::All } else { ProcessFilter::Live };
    let list = blocking(&s, move |k| k.processes(filter)).await?;
    Ok(Json(Value::Array(list.iter().map(wire::process).collect())))
}

/// `GET /api/processes/{pid}`: one process, with its children's pids.
pub(crate) async fn process(State(s): State<Shared>, Path(p): Path<String>) -> Answer {
    let pid = pid(&p)?;
    let (info, children) = blocking(&s, move |k| Ok((k.process(pid)?, k.children(pid)?))).await?;
    let mut out = wire::process(&info);
    out["children"] = json!(children.iter().map(|c| c.get()).collect::<Vec<_>>());
    Ok(Json(out))
}

/// `GET /api/processes/{pid}/transcript`: quanta with their leases, model
/// and tool calls.
pub(crate) async fn transcript(State(s): State<Shared>, Path(p): Path<String>) -> Answer {
    let pid = pid(&p)?;
    let (info, calls, entries, leases) = blocking(&s, move |k| {
        let info = k.process(pid)?;
        let calls = k.model_calls(pid)?;
        let (entries, _) = k.transcript(pid, None)?;
        Ok((info, calls, entries, k.leases(pid)?))
    })
    .await?;
    Ok(Json(wire::transcript(&info, &calls, &entries, &leases)))
}

/// `GET /api/processes/{pid}/caps`: its grants and where each stands.
pub(crate) async fn caps(State(s): State<Shared>, Path(p): Path<String>) -> Answer {
    let pid = pid(&p)?;
    let grants = blocking(&s, move |k| k.caps(pid)).await?;
    Ok(Json(Value::Array(grants.iter().map(|(g, status)| wire::grant(g, *status)).collect())))
}

/// Quanta a timeline shows unless asked for more.
const TIMELINE_QUANTA: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimelineQuery {
    limit: Option<usize>,
}

/// `GET /api/processes/{pid}/timeline[?limit=N]`: its last quanta, each with
/// its model calls, tool call, decisions, result and wait.
pub(crate) async fn timeline(
    State(s): State<Shared>,
    Path(p): Path<String>,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> Answer {
    let pid = pid(&p)?;
    let limit = query(q)?.limit.unwrap_or(TIMELINE_QUANTA);
    let out = blocking(&s, move |k| {
        let process = k.process(pid)?;
        let calls = k.model_calls(pid)?;
        let (entries, _) = k.transcript(pid, None)?;
        let records = k.audit(&AuditFilter { pid: Some(pid), ..AuditFilter::default() })?;
        let parked = k.parked(pid)?;
        let request = parked.as_ref().and_then(|p| p.request).map(|id| k.request(id)).transpose()?;
        let sources = timeline::Sources {
            process: &process,
            calls: &calls,
            entries: &entries,
            records: &records,
            parked: parked.as_ref(),
            request: request.as_ref(),
        };
        Ok(timeline::timeline(&sources, limit))
    })
    .await?;
    Ok(Json(out))
}

/// `GET /api/processes/{pid}/inbox`: every message to it, oldest first.
pub(crate) async fn inbox(State(s): State<Shared>, Path(p): Path<String>) -> Answer {
    let pid = pid(&p)?;
    let messages = blocking(&s, move |k| k.inbox(pid)).await?;
    Ok(Json(Value::Array(messages.iter().map(wire::message).collect())))
}

/// `GET /api/processes/{pid}/memory`: its memory view.
pub(crate) async fn memory(State(s): State<Shared>, Path(p): Path<String>) -> Answer {
    let pid = pid(&p)?;
    let view = blocking(&s, move |k| k.memory_view(pid)).await?;
    Ok(Json(Value::Array(view.iter().map(wire::handle).collect())))
}

/// `GET /api/memory/{oid}`: one object, content included.
pub(crate) async fn object(State(s): State<Shared>, Path(o): Path<String>) -> Answer {
    let oid: ObjectId = o.parse().map_err(ApiError::bad_request)?;
    let object = blocking(&s, move |k| k.memory_object(oid)).await?;
    Ok(Json(wire::object(&object)))
}

/// `GET /api/requests`: open approvals and questions, each with the
/// model's rationale and its call's preview.
pub(crate) async fn requests(State(s): State<Shared>) -> Answer {
    let open = blocking(&s, |k| k.pending()?.iter().map(|r| preview::request(k, r)).collect()).await?;
    Ok(Json(Value::Array(open)))
}

/// `GET /api/requests/{id}`: one request, open or decided.
pub(crate) async fn request(State(s): State<Shared>, Path(r): Path<String>) -> Answer {
    let id = request_id(&r)?;
    Ok(Json(blocking(&s, move |k| preview::request(k, &k.request(id)?)).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    #[serde(default)]
    always: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

async fn decide(s: Shared, r: String, verdict: Verdict) -> Answer {
    let id = request_id(&r)?;
    let decided = blocking(&s, move |k| k.decide(id, &verdict, &Actor::operator())).await?;
    Ok(Json(wire::decided(&decided)))
}

/// `POST /api/requests/{id}/approve` `{"always": false}`.
pub(crate) async fn approve(State(s): State<Shared>, Path(r): Path<String>, bytes: Bytes) -> Answer {
    let d: Decision = body(&bytes)?;
    decide(s, r, Verdict::Approve { always: d.always }).await
}

/// `POST /api/requests/{id}/deny` `{"always": false, "reason": "..."}`.
pub(crate) async fn deny(State(s): State<Shared>, Path(r): Path<String>, bytes: Bytes) -> Answer {
    let d: Decision = body(&bytes)?;
    let reason = d.reason.unwrap_or_else(|| "denied by the operator".to_string());
    decide(s, r, Verdict::Deny { always: d.always, reason }).await
}

/// `POST /api/requests/{id}/answer` `{"text": "..."}`.
pub(crate) async fn answer(State(s): State<Shared>, Path(r): Path<String>, bytes: Bytes) -> Answer {
    let d: Decision = body(&bytes)?;
    let text = d.text.filter(|t| !t.trim().is_empty()).ok_or_else(|| ApiError::bad_request("`text` is required"))?;
    decide(s, r, Verdict::Answer { text }).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct KillBody {
    #[serde(default)]
    tree: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/processes/{pid}/kill` `{"tree": false, "reason": "..."}`.
pub(crate) async fn kill(State(s): State<Shared>, Path(p): Path<String>, bytes: Bytes) -> Answer {
    let pid = pid(&p)?;
    let b: KillBody = body(&bytes)?;
    let reason = b.reason.unwrap_or_else(|| "killed by the operator".to_string());
    let killed = blocking(&s, move |k| k.kill_tree(pid, b.tree, Actor::operator(), &reason)).await?;
    Ok(Json(wire::killed(&killed)))
}

/// `POST /api/processes/{pid}/pause`.
pub(crate) async fn pause(State(s): State<Shared>, Path(p): Path<String>) -> Answer {
    let pid = pid(&p)?;
    let state = blocking(&s, move |k| k.pause(pid, Actor::operator())).await?;
    Ok(Json(wire::state_change(pid, &state)))
}

/// `POST /api/processes/{pid}/resume`.
pub(crate) async fn resume(State(s): State<Shared>, Path(p): Path<String>) -> Answer {
    let pid = pid(&p)?;
    let state = blocking(&s, move |k| k.resume(pid, Actor::operator())).await?;
    Ok(Json(wire::state_change(pid, &state)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendBody {
    text: String,
    #[serde(default)]
    interrupt: bool,
    #[serde(default)]
    channel: Option<String>,
}

/// `POST /api/processes/{pid}/messages` `{"text": "...", "interrupt": false, "channel": null}`.
pub(crate) async fn send(State(s): State<Shared>, Path(p): Path<String>, bytes: Bytes) -> Answer {
    let to = pid(&p)?;
    let b: SendBody = body(&bytes)?;
    if b.text.trim().is_empty() {
        return Err(ApiError::bad_request("`text` is required"));
    }
    let m = NewMessage {
        to,
        body: b.text,
        kind: if b.interrupt { MessageKind::Interrupt } else { MessageKind::Normal },
        channel: b.channel,
        correlation_id: None,
        reply_to: None,
    };
    let id = blocking(&s, move |k| k.send(&m, &Actor::operator())).await?;
    Ok(Json(wire::sent(id, to)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    pid: Option<String>,
    tool: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    after: Option<i64>,
    before: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/audit?pid=&tool=&outcome=&since=&after=&before=&limit=`: the
/// CLI's filters; `before` pages back (the `limit` newest before that seq).
pub(crate) async fn audit(State(s): State<Shared>, q: Result<Query<AuditQuery>, QueryRejection>) -> Answer {
    let q = query(q)?;
    let outcome = match &q.outcome {
        Some(o) => Some(Outcome::parse(o).ok_or_else(|| {
            let all: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            ApiError::bad_request(format!("invalid outcome `{o}` (expected one of {})", all.join(", ")))
        })?),
        None => None,
    };
    let filter = AuditFilter {
        pid: q.pid.as_deref().map(pid).transpose()?,
        action: q.tool,
        outcome,
        since: q
            .since
            .as_deref()
            .map(|t| Timestamp::parse_since(t, libos_kernel::clock::system_now()).map_err(ApiError::bad_request))
            .transpose()?,
        after: q.after.map(AuditSeq),
        before: q.before.map(AuditSeq),
        limit: q.limit,
        first: None,
    };
    let records = blocking(&s, move |k| k.audit(&filter)).await?;
    Ok(Json(Value::Array(records.iter().map(wire::audit).collect())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyQuery {
    expect_head: Option<String>,
}

/// `GET /api/audit/verify[?expect_head=HASH]`: 200 with `ok` true or false.
pub(crate) async fn verify(State(s): State<Shared>, q: Result<Query<VerifyQuery>, QueryRejection>) -> Answer {
    let q = query(q)?;
    if let Some(h) = &q.expect_head
        && !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ApiError::bad_request("expect_head is not an audit head: 64 hexadecimal digits".to_string()));
    }
    let head = q.expect_head.map(|h| h.to_ascii_lowercase());
    let report = blocking(&s, move |k| k.audit_verify(head.as_deref())).await?;
    Ok(Json(wire::verify(&report)))
}

/// `GET /api/audit/head`.
pub(crate) async fn head(State(s): State<Shared>) -> Answer {
    let (seq, hash) = blocking(&s, |k| k.audit_head()).await?;
    Ok(Json(json!({"seq": seq.get(), "hash": hash})))
}
