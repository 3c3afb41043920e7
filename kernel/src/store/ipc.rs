//! Rows of parking: requests to humans, the parked call, messages, children.

use super::Tx;
use super::audit::AuditRef;
use super::db::{Param, Row};
use crate::actor::Actor;
use crate::caps::{Resource, ResourcePattern, Right};
use crate::error::KernelError;
use crate::ids::{MsgId, Pid, RequestId};
use crate::ipc::{Message, MessageFilter, MessageKind, NewMessage, Request, RequestKind, RequestStatus, ToolHints};
use crate::quantum::ToolCallRecord;
use crate::time::Timestamp;

fn corrupt(what: String) -> KernelError {
    KernelError::Store(crate::error::StoreError::Corrupt(what))
}

pub(crate) use crate::quantum::ParkedCall;

const REQUEST_COLUMNS: &str = "r.id, r.pid, p.image_name, p.goal, r.kind, r.tool, r.args, r.args_sha256, r.resource, \
     r.wanted, r.question, r.status, r.answer, r.decided_by, r.decided_at, r.created_at, r.audit_seq, r.hints";

/// Hints as stored: a JSON object of the fields given (`title`,
/// `read_only`, `destructive`, `idempotent`, `open_world`).
fn hints_text(h: &ToolHints) -> String {
    let mut o = serde_json::Map::new();
    if let Some(t) = &h.title {
        o.insert("title".into(), t.clone().into());
    }
    for (key, v) in [
        ("read_only", h.read_only),
        ("destructive", h.destructive),
        ("idempotent", h.idempotent),
        ("open_world", h.open_world),
    ] {
        if let Some(v) = v {
            o.insert(key.into(), v.into());
        }
    }
    serde_json::Value::Object(o).to_string()
}

/// Stored hints back; `None` for text that is not such an object (they
/// are display only, so an unreadable value hides them rather than
/// making the request unreadable).
fn hints_of(text: &str) -> Option<ToolHints> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let o = v.as_object()?;
    let flag = |k: &str| o.get(k).and_then(serde_json::Value::as_bool);
    Some(ToolHints {
        title: o.get("title").and_then(serde_json::Value::as_str).map(str::to_string),
        read_only: flag("read_only"),
        destructive: flag("destructive"),
        idempotent: flag("idempotent"),
        open_world: flag("open_world"),
    })
}

fn request_from_row(r: &Row<'_, '_>) -> Result<(Request, AuditRef), KernelError> {
    let id: i64 = r.get(0)?;
    let bad = |what: &str| Err(corrupt(format!("request {id}: {what}")));
    let kind = match r.get::<&str>(4)? {
        "approval" => {
            let resource: Option<&str> = r.get(8)?;
            let wanted: Option<&str> = r.get(9)?;
            let parsed = resource.map(ResourcePattern::parse);
            let right = wanted.and_then(|w| Right::ALL.into_iter().find(|x| x.as_str() == w));
            match (parsed, right) {
                (Some(Ok(p)), Some(right)) => RequestKind::Approval { resource: resource_of(&p), right },
                _ => return bad("approval without a resource and right"),
            }
        }
        "question" => RequestKind::Question { text: r.get::<Option<String>>(10)?.unwrap_or_default() },
        _ => return bad("unknown kind"),
    };
    let answer: Option<String> = r.get(12)?;
    let status = match r.get::<&str>(11)? {
        "open" => RequestStatus::Open,
        "approved" => RequestStatus::Approved,
        "denied" => RequestStatus::Denied { reason: answer.unwrap_or_default() },
        "answered" => RequestStatus::Answered { text: answer.unwrap_or_default() },
        "cancelled" => RequestStatus::Cancelled,
        _ => return bad("unknown status"),
    };
    let decided_by: Option<&str> = r.get(13)?;
    let decided_at: Option<i64> = r.get(14)?;
    let decided = match (decided_by.map(|a| a.parse::<Actor>()), decided_at) {
        (Some(Ok(a)), Some(t)) => Some((a, Timestamp(t))),
        (None, _) => None,
        _ => return bad("unreadable decider"),
    };
    Ok((
        Request {
            id: RequestId(id),
            pid: Pid(r.get(1)?),
            image: r.get(2)?,
            goal: r.get(3)?,
            tool: r.get(5)?,
            args: r.get(6)?,
            args_sha256: r.get(7)?,
            kind,
            hints: r.get::<Option<&str>>(17)?.and_then(hints_of),
            status,
            created_at: Timestamp(r.get(15)?),
            decided,
        },
        AuditRef(r.get(16)?),
    ))
}

/// An exact resource pattern back to the resource it names.
fn resource_of(p: &ResourcePattern) -> Resource {
    use crate::caps::PatternName;
    match &p.name {
        PatternName::Exact(n) | PatternName::Subtree(n) => Resource::new(p.kind, n.clone()),
        PatternName::Any => Resource::new(p.kind, ""),
    }
}

const MESSAGE_COLUMNS: &str = "id, sender, to_pid, kind, channel, correlation_id, reply_to, body, sent_at, read_at";

fn message_from_row(r: &Row<'_, '_>) -> Result<Message, KernelError> {
    let id: i64 = r.get(0)?;
    let (Ok(from), Ok(kind)) = (r.get::<&str>(1)?.parse::<Actor>(), MessageKind::parse(r.get(3)?)) else {
        return Err(corrupt(format!("message {id}: unreadable sender or kind")));
    };
    Ok(Message {
        id: MsgId(id),
        from,
        to: Pid(r.get(2)?),
        kind,
        channel: r.get(4)?,
        correlation_id: r.get(5)?,
        reply_to: r.get::<Option<i64>>(6)?.map(MsgId),
        body: r.get(7)?,
        sent_at: Timestamp(r.get(8)?),
        read_at: r.get::<Option<i64>>(9)?.map(Timestamp),
    })
}

impl Tx<'_> {
    /// Records the call a process parks on.
    pub(crate) fn insert_parked(
        &self,
        pid: Pid,
        quantum: u64,
        call: &ToolCallRecord,
        request: Option<RequestId>,
        now: Timestamp,
    ) -> Result<(), KernelError> {
        self.exec(
            "INSERT INTO parked (pid, quantum, call_id, tool, args, rationale, request_id, parked_at, carry) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                &pid.get(),
                &(quantum as i64),
                &call.call_id,
                &call.tool,
                &call.args,
                &call.rationale,
                &request.map(RequestId::get),
                &now.micros(),
                &call.carry,
            ],
        )?;
        Ok(())
    }

    /// The call `pid` is parked on, if any.
    pub(crate) fn parked(&self, pid: Pid) -> Result<Option<ParkedCall>, KernelError> {
        self.row(
            "SELECT quantum, call_id, tool, args, rationale, request_id, approved, carry FROM parked WHERE pid = ?",
            &[&pid.get()],
            |r| {
                Ok(ParkedCall {
                    quantum: r.get::<i64>(0)? as u64,
                    call: ToolCallRecord {
                        call_id: r.get(1)?,
                        tool: r.get(2)?,
                        args: r.get(3)?,
                        rationale: r.get(4)?,
                        carry: r.get(7)?,
                    },
                    request: r.get::<Option<i64>>(5)?.map(RequestId),
                    approved: r.get(6)?,
                })
            },
        )
    }

    /// Marks the parked call approved: the next lease re-dispatches it.
    pub(crate) fn approve_parked(&self, pid: Pid) -> Result<(), KernelError> {
        self.exec("UPDATE parked SET approved = 1 WHERE pid = ?", &[&pid.get()])?;
        Ok(())
    }

    /// Removes the parked call (it completed, or the process ended).
    pub(crate) fn take_parked(&self, pid: Pid) -> Result<Option<ParkedCall>, KernelError> {
        let found = self.parked(pid)?;
        if found.is_some() {
            self.exec("DELETE FROM parked WHERE pid = ?", &[&pid.get()])?;
        }
        Ok(found)
    }

    /// Opens a request for the call `pid` is about to park on, with what
    /// its tool says of itself (`hints`, display only).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert_request(
        &self,
        pid: Pid,
        kind: &RequestKind,
        hints: Option<&ToolHints>,
        tool: &str,
        args: &str,
        args_sha256: &str,
        audit: AuditRef,
        now: Timestamp,
    ) -> Result<RequestId, KernelError> {
        let (tag, resource, wanted, question) = match kind {
            RequestKind::Approval { resource, right } => {
                ("approval", Some(ResourcePattern::exact(resource).to_string()), Some(right.as_str()), None)
            }
            RequestKind::Question { text } => ("question", None, None, Some(text.as_str())),
        };
        let hints = hints.filter(|h| !h.is_empty()).map(hints_text);
        let id = self.one(
            "INSERT INTO requests (pid, kind, tool, args, args_sha256, audit_seq, resource, wanted, question, \
             hints, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?) RETURNING id",
            &[
                &pid.get(),
                &tag,
                &tool,
                &args,
                &args_sha256,
                &audit.0,
                &resource,
                &wanted,
                &question,
                &hints,
                &now.micros(),
            ],
            |r| r.get(0),
        )?;
        Ok(RequestId(id))
    }

    /// One request and where the audit record of the call it parked is.
    pub(crate) fn request(&self, id: RequestId) -> Result<Option<(Request, AuditRef)>, KernelError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests r JOIN processes p ON p.pid = r.pid WHERE r.id = ?");
        self.row(&sql, &[&id.get()], request_from_row)
    }

    /// Open requests, oldest first.
    pub(crate) fn open_requests(&self) -> Result<Vec<Request>, KernelError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests r JOIN processes p ON p.pid = r.pid \
             WHERE r.status = 'open' ORDER BY r.id"
        );
        self.rows(&sql, &[], |r| request_from_row(r).map(|(req, _)| req))
    }

    /// Decides an open request; false if it was not open (decided exactly once).
    pub(crate) fn decide_request(
        &self,
        id: RequestId,
        status: &RequestStatus,
        by: &Actor,
        now: Timestamp,
    ) -> Result<bool, KernelError> {
        let answer = match status {
            RequestStatus::Denied { reason } => Some(reason.as_str()),
            RequestStatus::Answered { text } => Some(text.as_str()),
            RequestStatus::Open | RequestStatus::Approved | RequestStatus::Cancelled => None,
        };
        let changed = self.exec(
            "UPDATE requests SET status = ?, answer = ?, decided_by = ?, decided_at = ? \
             WHERE id = ? AND status = 'open'",
            &[&status.name(), &answer, &by.to_string(), &now.micros(), &id.get()],
        )?;
        Ok(changed == 1)
    }

    /// Cancels every open request of `pid`; returns their ids.
    pub(crate) fn cancel_requests(&self, pid: Pid, now: Timestamp) -> Result<Vec<RequestId>, KernelError> {
        let ids = self.rows("SELECT id FROM requests WHERE pid = ? AND status = 'open'", &[&pid.get()], |r| {
            Ok(RequestId(r.get(0)?))
        })?;
        for id in &ids {
            self.decide_request(*id, &RequestStatus::Cancelled, &Actor::Kernel, now)?;
        }
        Ok(ids)
    }

    /// Delivers a message; returns its id.
    pub(crate) fn insert_message(&self, from: &Actor, m: &NewMessage, now: Timestamp) -> Result<MsgId, KernelError> {
        let sender_pid = match from {
            Actor::Process(p) => Some(p.get()),
            Actor::Human(_) | Actor::Kernel => None,
        };
        let id = self.one(
            "INSERT INTO messages (sender, sender_pid, to_pid, kind, channel, correlation_id, reply_to, body, \
             sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            &[
                &from.to_string(),
                &sender_pid,
                &m.to.get(),
                &m.kind.as_str(),
                &m.channel,
                &m.correlation_id,
                &m.reply_to.map(MsgId::get),
                &m.body,
                &now.micros(),
            ],
            |r| r.get(0),
        )?;
        self.exec("UPDATE processes SET unread = unread + 1 WHERE pid = ?", &[&m.to.get()])?;
        Ok(MsgId(id))
    }

    /// A process's messages, oldest first: unread only, or all.
    pub(crate) fn inbox(&self, pid: Pid, unread_only: bool) -> Result<Vec<Message>, KernelError> {
        let sql = if unread_only {
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE to_pid = ? AND read_at IS NULL ORDER BY id")
        } else {
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE to_pid = ? ORDER BY id")
        };
        self.rows(&sql, &[&pid.get()], message_from_row)
    }

    /// Unread messages matching `filter`, oldest first, at most `limit`: the
    /// filter is applied in the query, which stops at the `limit`-th match
    /// instead of loading the whole inbox.
    pub(crate) fn unread_matching(
        &self,
        pid: Pid,
        filter: &MessageFilter,
        limit: usize,
    ) -> Result<Vec<Message>, KernelError> {
        // Only the filter's present fields become conditions: each test is
        // one the planner sees, not an `? IS NULL OR ...` it cannot type.
        let from = filter.from.map(Pid::get);
        let kind = filter.kind.map(|k| k.as_str());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE to_pid = ? AND read_at IS NULL");
        let mut params: Vec<&dyn Param> = vec![&pid.0];
        let conditions: [(&str, Option<&dyn Param>); 4] = [
            ("sender_pid", from.as_ref().map(|p| p as &dyn Param)),
            ("channel", filter.channel.as_ref().map(|c| c as &dyn Param)),
            ("kind", kind.as_ref().map(|k| k as &dyn Param)),
            ("correlation_id", filter.correlation_id.as_ref().map(|c| c as &dyn Param)),
        ];
        for (column, value) in conditions {
            if let Some(value) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                params.push(value);
            }
        }
        sql.push_str(" ORDER BY id LIMIT ?");
        params.push(&limit);
        let found = self.rows(&sql, &params, message_from_row)?;
        // The query and the filter are one rule; the filter has the last word.
        Ok(found.into_iter().filter(|m| filter.matches(m)).collect())
    }

    /// Marks messages taken by their recipient (and counts them off its unread).
    pub(crate) fn mark_read(&self, ids: &[MsgId], now: Timestamp) -> Result<(), KernelError> {
        for id in ids {
            let to: Option<i64> = self.row(
                "UPDATE messages SET read_at = ? WHERE id = ? AND read_at IS NULL RETURNING to_pid",
                &[&now.micros(), &id.get()],
                |r| r.get(0),
            )?;
            if let Some(to) = to {
                self.exec("UPDATE processes SET unread = unread - 1 WHERE pid = ?", &[&to])?;
            }
        }
        Ok(())
    }

    /// (unread count, unread interrupts) of `pid`. Runs on every lease, so
    /// the count is the process row's and the interrupts come from their
    /// own partial index: neither grows with the messages waiting.
    pub(crate) fn unread_summary(&self, pid: Pid) -> Result<(u64, Vec<Message>), KernelError> {
        let count: i64 = self.one("SELECT unread FROM processes WHERE pid = ?", &[&pid.get()], |r| r.get(0))?;
        if count == 0 {
            return Ok((0, Vec::new()));
        }
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages INDEXED BY messages_interrupts \
             WHERE to_pid = ? AND read_at IS NULL AND kind = 'interrupt' ORDER BY id"
        );
        let interrupts = self.rows(&sql, &[&pid.get()], message_from_row)?;
        Ok((count as u64, interrupts))
    }

    /// The children of `pid` (by the parent link), in pid order.
    pub(crate) fn children(&self, pid: Pid) -> Result<Vec<Pid>, KernelError> {
        self.rows("SELECT pid FROM processes WHERE ppid = ? ORDER BY pid", &[&pid.get()], |r| Ok(Pid(r.get(0)?)))
    }

    /// Whether a child's end was already returned by a `wait`.
    pub(crate) fn is_reaped(&self, pid: Pid) -> Result<bool, KernelError> {
        Ok(self.row("SELECT reaped FROM processes WHERE pid = ?", &[&pid.get()], |r| r.get(0))?.unwrap_or(false))
    }

    /// Marks a child's end as returned by a `wait`.
    pub(crate) fn set_reaped(&self, pid: Pid) -> Result<(), KernelError> {
        self.exec("UPDATE processes SET reaped = 1 WHERE pid = ?", &[&pid.get()])?;
        Ok(())
    }

    /// Detaches the live children of an ended parent (they keep running,
    /// and nothing of the parent's kinship stays with them). Ended children
    /// keep their parent link, so the tree stays readable afterwards.
    pub(crate) fn orphan_children(&self, pid: Pid) -> Result<(), KernelError> {
        self.exec(
            "UPDATE processes SET ppid = NULL WHERE ppid = ? AND state NOT IN ('exited', 'failed', 'killed')",
            &[&pid.get()],
        )?;
        Ok(())
    }

    /// Waiting processes whose timer is due at `now`.
    pub(crate) fn due_timers(&self, now: Timestamp) -> Result<Vec<Pid>, KernelError> {
        let sql = format!(
            "SELECT pid FROM processes INDEXED BY processes_timers \
             WHERE state = 'waiting' AND ready_at IS NOT NULL AND ready_at <= ? ORDER BY ready_at{}",
            self.claim_rows()
        );
        self.rows(&sql, &[&now.micros()], |r| Ok(Pid(r.get(0)?)))
    }

    /// The earliest timer among waiting processes.
    pub(crate) fn next_timer(&self) -> Result<Option<Timestamp>, KernelError> {
        self.one(
            "SELECT MIN(ready_at) FROM processes INDEXED BY processes_timers \
             WHERE state = 'waiting' AND ready_at IS NOT NULL",
            &[],
            |r| Ok(r.get::<Option<i64>>(0)?.map(Timestamp)),
        )
    }
}
