//! A process's state as stored: the store-row family of [`ProcState`].
//!
//! The `processes` table holds a state as a tag (`state`), the variant's
//! data as JSON (`state_data`) and the columns the scheduler's queries use
//! (`ready_at`, `lease_owner`, `lease_expires`). The JSON is described here
//! by private serde types, one per tag, with `deny_unknown_fields` and no
//! defaults: a row that does not decode is store corruption naming the pid
//! and what was wrong with it. The domain type never derives serde; the
//! two are converted by hand in [`encode`] and [`decode`].
//!
//! The encoding is the one the hand-written codec before it wrote, byte
//! for byte (fields in the order `serde_json::json!` sorted them), so
//! stores written before read unchanged; the tests below pin it.

use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::error::{KernelError, StoreError};
use crate::ids::{Pid, RequestId, SchedulerId};
use crate::ipc::{MessageFilter, MessageKind};
use crate::state::{FailureKind, LeaseInfo, ProcState, WaitOn};
use crate::time::Timestamp;

/// The state's columns.
pub(super) struct StateColumns {
    /// `state`.
    pub tag: &'static str,
    /// `state_data`.
    pub data: String,
    /// `ready_at`: a backoff's or a timer's deadline.
    pub ready_at: Option<i64>,
    /// `lease_owner`.
    pub lease_owner: Option<String>,
    /// `lease_expires`.
    pub lease_expires: Option<i64>,
}

/// `{}`: runnable and running keep everything in columns.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Waiting {
    on: WaitRow,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum WaitRow {
    Human(i64),
    Child(Option<i64>),
    Message(FilterRow),
    Timer(i64),
}

/// Fields in sorted order: the old codec's `json!` map wrote them so.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterRow {
    channel: Option<String>,
    correlation_id: Option<String>,
    from: Option<i64>,
    kind: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Paused {
    was: Was,
}

/// The state a paused process returns to: its tag, its data (as JSON
/// text, nested) and its deadline.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Was {
    data: String,
    ready_at: Option<i64>,
    state: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Exited {
    code: i32,
    result: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Failed {
    error: String,
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Killed {
    by: String,
    reason: String,
}

fn json<T: Serialize>(row: &T) -> String {
    // These types are strings, integers and options: serialising cannot fail.
    serde_json::to_string(row).unwrap_or_default()
}

/// The columns of `state`.
pub(super) fn encode(state: &ProcState) -> StateColumns {
    let plain = |tag, data: String| StateColumns { tag, data, ready_at: None, lease_owner: None, lease_expires: None };
    match state {
        ProcState::Runnable { not_before } => {
            StateColumns { ready_at: not_before.map(Timestamp::micros), ..plain("runnable", json(&Nothing {})) }
        }
        // The quantum number lives in `quanta`; owner and expiry in their own columns (renewed in place).
        ProcState::Running { lease } => StateColumns {
            lease_owner: Some(lease.owner.0.clone()),
            lease_expires: Some(lease.expires_at.micros()),
            ..plain("running", json(&Nothing {}))
        },
        ProcState::Waiting { on } => {
            let ready_at = match on {
                WaitOn::Timer(t) => Some(t.micros()),
                WaitOn::Human(_) | WaitOn::Child(_) | WaitOn::Message(_) => None,
            };
            StateColumns { ready_at, ..plain("waiting", json(&Waiting { on: wait_row(on) })) }
        }
        ProcState::Paused { was } => {
            let inner = encode(was);
            let was = Was { data: inner.data, ready_at: inner.ready_at, state: inner.tag.to_string() };
            plain("paused", json(&Paused { was }))
        }
        ProcState::Exited { code, result } => plain("exited", json(&Exited { code: *code, result: result.clone() })),
        ProcState::Failed { kind, error } => {
            plain("failed", json(&Failed { error: error.clone(), kind: kind.as_str().to_string() }))
        }
        ProcState::Killed { by, reason } => {
            plain("killed", json(&Killed { by: by.to_string(), reason: reason.clone() }))
        }
    }
}

fn wait_row(on: &WaitOn) -> WaitRow {
    match on {
        WaitOn::Human(id) => WaitRow::Human(id.get()),
        WaitOn::Child(pid) => WaitRow::Child(pid.map(Pid::get)),
        WaitOn::Message(f) => WaitRow::Message(FilterRow {
            channel: f.channel.clone(),
            correlation_id: f.correlation_id.clone(),
            from: f.from.map(Pid::get),
            kind: f.kind.map(|k| k.as_str().to_string()),
        }),
        WaitOn::Timer(t) => WaitRow::Timer(t.micros()),
    }
}

fn corrupt(pid: i64, what: impl std::fmt::Display) -> KernelError {
    KernelError::Store(StoreError::Corrupt(format!("process {pid}: {what}")))
}

/// The state in a row's columns; `quanta` is the process's quantum count
/// (a running lease's quantum number).
pub(super) fn decode(
    pid: i64,
    tag: &str,
    data: &str,
    cols: (Option<i64>, Option<String>, Option<i64>),
    quanta: i64,
) -> Result<ProcState, KernelError> {
    fn row<'a, T: Deserialize<'a>>(pid: i64, tag: &str, data: &'a str) -> Result<T, KernelError> {
        serde_json::from_str(data).map_err(|e| corrupt(pid, format_args!("`{tag}` state data {data:?}: {e}")))
    }
    let (ready_at, owner, expires) = cols;
    Ok(match tag {
        "runnable" => {
            row::<Nothing>(pid, tag, data)?;
            ProcState::Runnable { not_before: ready_at.map(Timestamp) }
        }
        "running" => {
            row::<Nothing>(pid, tag, data)?;
            ProcState::Running {
                lease: LeaseInfo {
                    owner: SchedulerId(owner.ok_or_else(|| corrupt(pid, "running without a lease owner"))?),
                    expires_at: Timestamp(expires.ok_or_else(|| corrupt(pid, "running without a lease expiry"))?),
                    quantum: u64::try_from(quanta).map_err(|_| corrupt(pid, "a negative quantum count"))?,
                },
            }
        }
        "waiting" => ProcState::Waiting { on: wait_on(pid, row::<Waiting>(pid, tag, data)?.on)? },
        "paused" => {
            let was = row::<Paused>(pid, tag, data)?.was;
            if !matches!(was.state.as_str(), "runnable" | "waiting") {
                return Err(corrupt(pid, format_args!("paused from `{}`, a state that cannot be paused", was.state)));
            }
            ProcState::Paused { was: Box::new(decode(pid, &was.state, &was.data, (was.ready_at, None, None), quanta)?) }
        }
        "exited" => {
            let Exited { code, result } = row(pid, tag, data)?;
            ProcState::Exited { code, result }
        }
        "failed" => {
            let Failed { error, kind } = row(pid, tag, data)?;
            let kind =
                FailureKind::parse(&kind).ok_or_else(|| corrupt(pid, format_args!("unknown failure `{kind}`")))?;
            ProcState::Failed { kind, error }
        }
        "killed" => {
            let Killed { by, reason } = row(pid, tag, data)?;
            let by: Actor = by.parse().map_err(|_| corrupt(pid, format_args!("killed by `{by}`, not an actor")))?;
            ProcState::Killed { by, reason }
        }
        other => return Err(corrupt(pid, format_args!("unknown state `{other}`"))),
    })
}

fn wait_on(pid: i64, row: WaitRow) -> Result<WaitOn, KernelError> {
    Ok(match row {
        WaitRow::Human(id) => WaitOn::Human(RequestId(id)),
        WaitRow::Child(child) => WaitOn::Child(child.map(Pid)),
        WaitRow::Message(f) => WaitOn::Message(MessageFilter {
            from: f.from.map(Pid),
            channel: f.channel,
            kind: match f.kind {
                Some(k) => Some(MessageKind::parse(&k).map_err(|e| corrupt(pid, e))?),
                None => None,
            },
            correlation_id: f.correlation_id,
        }),
        WaitRow::Timer(t) => WaitOn::Timer(Timestamp(t)),
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn every_state() -> Vec<ProcState> {
        let filter = MessageFilter {
            from: Some(Pid(2)),
            channel: Some("jobs".into()),
            kind: Some(MessageKind::parse("interrupt").unwrap()),
            correlation_id: Some("c-1".into()),
        };
        let waits = vec![
            WaitOn::Human(RequestId(4)),
            WaitOn::Child(Some(Pid(3))),
            WaitOn::Child(None),
            WaitOn::Message(filter),
            WaitOn::Message(MessageFilter { from: None, channel: None, kind: None, correlation_id: None }),
            WaitOn::Timer(Timestamp(1_700_000_000_000_000)),
        ];
        let mut out = vec![
            ProcState::Runnable { not_before: None },
            ProcState::Runnable { not_before: Some(Timestamp(1_700_000_000_000_001)) },
            ProcState::Running {
                lease: LeaseInfo { owner: SchedulerId("s-1".into()), expires_at: Timestamp(9), quantum: 7 },
            },
            ProcState::Exited { code: -2, result: "done \"quoted\"".into() },
            ProcState::Failed { kind: FailureKind::BudgetExhausted, error: "over".into() },
            ProcState::Killed { by: Actor::operator(), reason: "enough".into() },
            ProcState::Killed { by: Actor::Process(Pid(1)), reason: String::new() },
        ];
        for on in waits {
            out.push(ProcState::Paused { was: Box::new(ProcState::Waiting { on: on.clone() }) });
            out.push(ProcState::Waiting { on });
        }
        out.push(ProcState::Paused { was: Box::new(ProcState::Runnable { not_before: Some(Timestamp(5)) }) });
        out.push(ProcState::Paused { was: Box::new(ProcState::Runnable { not_before: None }) });
        out
    }

    /// Every state reads back as itself.
    #[test]
    fn every_state_round_trips() {
        for state in every_state() {
            let c = encode(&state);
            let back = decode(1, c.tag, &c.data, (c.ready_at, c.lease_owner.clone(), c.lease_expires), 7).unwrap();
            assert_eq!(back, state);
        }
    }

    /// The bytes are the ones the codec before this one wrote (its
    /// `json!` maps sort keys), so old stores read unchanged.
    #[test]
    fn the_encoding_is_the_one_stores_already_hold() {
        let got: Vec<String> = every_state().iter().map(|s| format!("{} {}", encode(s).tag, encode(s).data)).collect();
        let old: Vec<String> = every_state().iter().map(old_encoding).collect();
        assert_eq!(got, old);
    }

    /// The hand-written encoder this module replaced, kept as the reference.
    fn old_encoding(state: &ProcState) -> String {
        use serde_json::json;
        fn wait_json(on: &WaitOn) -> serde_json::Value {
            match on {
                WaitOn::Human(id) => json!({"human": id.get()}),
                WaitOn::Child(pid) => json!({"child": pid.map(Pid::get)}),
                WaitOn::Message(f) => json!({"message": {
                    "from": f.from.map(Pid::get),
                    "channel": f.channel,
                    "kind": f.kind.map(MessageKind::as_str),
                    "correlation_id": f.correlation_id,
                }}),
                WaitOn::Timer(t) => json!({"timer": t.micros()}),
            }
        }
        fn row(state: &ProcState) -> (&'static str, String, Option<i64>) {
            match state {
                ProcState::Runnable { not_before } => {
                    ("runnable", json!({}).to_string(), not_before.map(|t| t.micros()))
                }
                ProcState::Running { .. } => ("running", json!({}).to_string(), None),
                ProcState::Waiting { on } => {
                    let ready = match on {
                        WaitOn::Timer(t) => Some(t.micros()),
                        _ => None,
                    };
                    ("waiting", json!({"on": wait_json(on)}).to_string(), ready)
                }
                ProcState::Paused { was } => {
                    let (tag, data, ready_at) = row(was);
                    ("paused", json!({"was": {"state": tag, "data": data, "ready_at": ready_at}}).to_string(), None)
                }
                ProcState::Exited { code, result } => {
                    ("exited", json!({"code": code, "result": result}).to_string(), None)
                }
                ProcState::Failed { kind, error } => {
                    ("failed", json!({"kind": kind.as_str(), "error": error}).to_string(), None)
                }
                ProcState::Killed { by, reason } => {
                    ("killed", json!({"by": by.to_string(), "reason": reason}).to_string(), None)
                }
            }
        }
        let (tag, data, _) = row(state);
        format!("{tag} {data}")
    }

    /// A row that does not decode is corruption naming the pid, never a default.
    #[test]
    fn a_row_that_does_not_decode_is_corruption_naming_the_pid() {
        let cases = [
            ("exited", r#"{"code":0}"#),
            ("exited", r#"{"code":"0","result":""}"#),
            ("killed", r#"{"by":"nobody","reason":""}"#),
            ("failed", r#"{"error":"e","kind":"tired"}"#),
            ("waiting", r#"{"on":{"moon":1}}"#),
            ("paused", r#"{"was":{"data":"{}","ready_at":null,"state":"exited"}}"#),
            ("runnable", r#"{"extra":1}"#),
            ("sleeping", "{}"),
        ];
        let errors: Vec<String> = cases
            .iter()
            .map(|(tag, data)| decode(9, tag, data, (None, None, None), 0).unwrap_err().to_string())
            .collect();
        assert_eq!(
            errors,
            [
                r#"store is corrupt: process 9: `exited` state data "{\"code\":0}": missing field `result` at line 1 column 10"#,
                r#"store is corrupt: process 9: `exited` state data "{\"code\":\"0\",\"result\":\"\"}": invalid type: string "0", expected i32 at line 1 column 11"#,
                "store is corrupt: process 9: killed by `nobody`, not an actor",
                "store is corrupt: process 9: unknown failure `tired`",
                r#"store is corrupt: process 9: `waiting` state data "{\"on\":{\"moon\":1}}": unknown variant `moon`, expected one of `human`, `child`, `message`, `timer` at line 1 column 13"#,
                "store is corrupt: process 9: paused from `exited`, a state that cannot be paused",
                r#"store is corrupt: process 9: `runnable` state data "{\"extra\":1}": unknown field `extra`, there are no fields at line 1 column 8"#,
                "store is corrupt: process 9: unknown state `sleeping`",
            ]
        );
    }
}
