//! `GET /api/events`: Server-Sent Events from the audit log.
//!
//! Everything worth showing live leaves an audit record as it commits: a
//! state change, a spawn, a park on an approval, a decision. The stream
//! therefore follows the audit chain: for each new record it sends a
//! `process` event (the process as it is now) when the record changed a
//! process, an `approval` event when it opened or decided a request, and
//! then the `audit` event itself, which carries the record's sequence number
//! as the event id. A client that reconnects with `Last-Event-ID` (browsers
//! do it on their own) resumes after that record; without one, the stream
//! starts at the head (`?after=0` replays everything).
//!
//! Commits through this process wake the stream at once; commits by other
//! processes (a `libos run`, the CLI) are seen by polling the store's change
//! counter.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use libos_kernel::audit::{AuditAction, AuditKind, KernelAction, Outcome};
use libos_kernel::{
    AsyncKernel, AuditFilter, AuditRecord, AuditSeq, Kernel, KernelError, ProcState, RequestId, WaitOn,
};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::{Shared, wire};

/// How often other processes' commits are looked for.
const POLL: Duration = Duration::from_millis(100);
/// Records read per batch.
const BATCH: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    after: Option<i64>,
}

struct Cursor {
    shared: Shared,
    /// Every read of the stream runs off the async workers.
    kernel: AsyncKernel,
    commits: Option<tokio::sync::watch::Receiver<u64>>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    after: i64,
    token: u64,
    queue: std::collections::VecDeque<Event>,
    /// The last read failed: wait a poll before the next, not a tight loop.
    failed: bool,
    /// Nothing is after `after` as of `token`: wait for a change before
    /// reading. A stream that starts at the head starts so, having read the
    /// head in the handler; were it to read again at once, on the blocking
    /// pool, that read could meet a caller's run of commits half done and
    /// show each process as it was in the middle of them.
    caught_up: bool,
}

/// The handler.
pub(crate) async fn events(
    State(shared): State<Shared>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let q = crate::api::query(q)?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim);
    let after = match (resume, q.after) {
        (Some(id), _) => {
            Some(id.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid Last-Event-ID `{id}`")))?)
        }
        (None, Some(n)) => Some(n),
        (None, None) => None,
    };
    let kernel = AsyncKernel::new(shared.kernel.clone());
    // Commits through this process wake the stream from here on; those
    // before are under the head read below.
    let mut commits = shared.commits.clone();
    commits.mark_unchanged();
    // The token before the head: a commit between the two reads changes
    // the token, so a stream caught up at the head still wakes for it.
    let (token, head) =
        kernel.call(|k| -> Result<_, KernelError> { Ok((k.change_token()?, k.audit_head()?.0.get())) }).await?;
    let caught_up = after.is_none();
    let after = after.unwrap_or(head);
    let (commits, stop) = (Some(commits), Some(shared.shutdown.clone()));
    let queue = Default::default();
    let cursor = Cursor { shared, kernel, commits, stop, after, token, queue, failed: false, caught_up };
    let stream = stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(event) = c.queue.pop_front() {
                return Some((Ok(event), c));
            }
            if *c.shared.shutdown.borrow() {
                return None;
            }
            if std::mem::take(&mut c.failed) {
                tokio::time::sleep(POLL).await;
            }
            if std::mem::take(&mut c.caught_up) {
                wait_for_change(&mut c).await;
                continue;
            }
            let after = c.after;
            match c.kernel.call(move |k| next_batch(k, after)).await {
                Ok((events, last)) if !events.is_empty() => {
                    c.after = last;
                    c.queue.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("event stream: {e}");
                    c.failed = true;
                    return Some((Ok(Event::default().event("error").data(e.to_string())), c));
                }
            }
            wait_for_change(&mut c).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Sleeps until a commit here, a change by another process, or shutdown.
/// A channel whose sender is gone is dropped from the wait (polling stays).
async fn wait_for_change(c: &mut Cursor) {
    loop {
        tokio::select! {
            r = async { c.commits.as_mut()?.changed().await.ok() }, if c.commits.is_some() => match r {
                Some(()) => return,
                None => c.commits = None,
            },
            r = async { c.stop.as_mut()?.changed().await.ok() }, if c.stop.is_some() => match r {
                Some(()) => return,
                None => c.stop = None,
            },
            () = tokio::time::sleep(POLL) => match c.kernel.call(Kernel::change_token).await {
                Ok(now) if now != c.token => {
                    c.token = now;
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            },
        }
    }
}

/// The events for the records after `after`, and the last seq read.
fn next_batch(kernel: &Kernel, after: i64) -> Result<(Vec<Event>, i64), KernelError> {
    let filter = AuditFilter { after: Some(AuditSeq(after)), first: Some(BATCH), ..AuditFilter::default() };
    let records = kernel.audit(&filter)?;
    let mut last = after;
    let mut events = Vec::new();
    for r in &records {
        last = r.seq.get();
        events.extend(events_for(kernel, r)?);
    }
    Ok((events, last))
}

fn events_for(kernel: &Kernel, r: &AuditRecord) -> Result<Vec<Event>, KernelError> {
    let events = record_events(kernel, r)?.into_iter().map(|(name, data)| {
        let event = json_event(name, &data);
        if name == "audit" { event.id(r.seq.get().to_string()) } else { event }
    });
    Ok(events.collect())
}

/// The events one audit record makes, in the order the stream sends them:
/// `process` (the process as it is now) when the record changed a
/// process, `approval` when it opened or decided a request, then `audit`
/// (the record). The console's stream and the Python package's event
/// iterator both follow the log with it.
pub fn record_events(kernel: &Kernel, r: &AuditRecord) -> Result<Vec<(&'static str, Value)>, KernelError> {
    let mut out = Vec::new();
    // The spawn tool's record is the parent's; the child's state records follow.
    let spawned = r.action.tool_name().is_some_and(|t| *t == "spawn");
    let touches_process =
        matches!(r.kind, AuditKind::State | AuditKind::Operator) || spawned || r.outcome == Outcome::Parked;
    if let Some(pid) = r.pid.filter(|_| touches_process) {
        let p = kernel.process(pid)?;
        out.push(("process", wire::process(&p)));
        // A park on a person: the request it opened (if still open now).
        if r.outcome == Outcome::Parked
            && let ProcState::Waiting { on: WaitOn::Human(id) } = p.state
        {
            out.push(("approval", wire::request(&kernel.request(id)?)));
        }
    }
    if matches!(r.action, AuditAction::Kernel(KernelAction::Approve | KernelAction::Deny | KernelAction::Answer))
        && let Some(id) =
            serde_json::from_str::<Value>(&r.args).ok().and_then(|a| a.get("request").and_then(Value::as_i64))
    {
        // A refused decision may name a request that does not exist.
        match kernel.request(RequestId(id)) {
            Ok(req) => out.push(("approval", wire::request(&req))),
            Err(KernelError::NoSuchRequest(_)) => {}
            Err(e) => return Err(e),
        }
    }
    out.push(("audit", wire::audit(r)));
    Ok(out)
}

fn json_event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}
