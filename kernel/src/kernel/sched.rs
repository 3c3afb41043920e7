//! What schedulers call: leasing, committing quanta, recovery.
//!
//! A quantum is, in the store: `lease` (runnable -> running), optionally
//! `record_rejection` per rejected model output and `begin_effect` before an
//! external effect, then exactly one of `commit_quantum` or `end_quantum`.
//! Everything after the lease is fenced by the lease's generation.

use std::time::Duration;

use serde_json::json;

use super::binding;
use super::syscalls::{self, SyscallOutcome};
use super::{Kernel, apply, apply_read};
use crate::actor::Actor;
use crate::audit::{AuditAction, AuditDecision, AuditDraft, AuditKind, Outcome};
use crate::budget::amounts;
use crate::caps::Effect;
use crate::error::KernelError;
use crate::ids::GrantId;
use crate::ids::{Pid, SchedulerId};
use crate::ipc::RequestKind;
use crate::quantum::{Action, InboxSummary, ToolResultRecord};
use crate::quantum::{EffectIntent, Lease, ModelCallRecord, Next, QuantumCommit};
use crate::state::WaitOn;
use crate::state::{Event, FailureKind, LeaseInfo, ProcState};
use crate::store::Tx;
use crate::syscall::Check;
use crate::time::Timestamp;
use crate::tool_name::ToolName;

/// Result of a committed quantum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The process's state after the commit.
    pub state: ProcState,
}

/// The leased process as it stands, if the lease still holds.
fn check_lease(tx: &Tx<'_>, lease: &Lease) -> Result<crate::process::ProcessInfo, KernelError> {
    let p = tx.process(lease.pid)?;
    if p.generation != lease.generation {
        return Err(KernelError::Stale { pid: lease.pid, expected: lease.generation, found: p.generation });
    }
    Ok(p)
}

/// The audit fields of a call's checks: the decisive effect, the grant that
/// decided it, and every check on one line when there is more to say.
fn summarize(checks: &[Check], approved: bool) -> (Option<AuditDecision>, Option<GrantId>, Option<String>) {
    let decisive = checks.iter().max_by_key(|c| c.decision.effect);
    let Some(d) = decisive else {
        return (None, None, None);
    };
    let mut decision = if d.decision.by_kinship() { AuditDecision::Kinship } else { d.decision.effect.into() };
    if approved && d.decision.effect == Effect::Ask {
        decision = AuditDecision::Approved;
    }
    let line = checks.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    (Some(decision), d.decision.grant, Some(line))
}

fn join_detail(detail: Option<String>, checks: Option<&str>) -> Option<String> {
    match (detail, checks) {
        (Some(d), Some(c)) => Some(format!("{d} [{c}]")),
        (Some(d), None) => Some(d),
        (None, Some(c)) => Some(c.to_string()),
        (None, None) => None,
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut end = line.len().min(200);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

impl Kernel {
    /// Leases up to `limit` due runnable processes (not in `exclude`) to `owner`
    /// for `ttl`: highest priority first, round-robin within a priority.
    pub fn lease(
        &self,
        owner: &SchedulerId,
        ttl: Duration,
        limit: usize,
        exclude: &[Pid],
    ) -> Result<Vec<Lease>, KernelError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write_claim(|tx| {
            let now = self.now();
            let expires_at = now.plus(ttl);
            let mut out = Vec::new();
            let due = tx.due_runnable(now, limit, exclude)?;
            if due.is_empty() {
                return Ok(out);
            }
            for mut p in due {
                // A process out of budget gets no quantum: it ends here.
                let used = amounts(&p.usage, now.since(p.created_at));
                if let Some((_, why)) = p.budget.exhausted(&used, &p.held_for_children()) {
                    apply_read(tx, &p, Event::Fail { kind: FailureKind::BudgetExhausted, error: why }, now)?;
                    continue;
                }
                let quantum = p.usage.quanta + 1;
                let info = LeaseInfo { owner: owner.clone(), expires_at, quantum };
                let (state, generation, _) = apply_read(tx, &p, Event::Lease(info), now)?;
                p.state = state;
                p.generation = generation;
                p.updated_at = now;
                // The approved call is checked against the chain here, where
                // its bytes are read: what the quantum runs is what was checked.
                let resume = match tx.parked(p.pid)? {
                    Some(parked) if parked.approved => match parked.request {
                        Some(request) => Some(binding::approved_call(tx, p.pid, parked, request)?),
                        None => None,
                    },
                    _ => None,
                };
                let (unread, interrupts) = tx.unread_summary(p.pid)?;
                let pinned = tx.pinned_objects(p.pid)?;
                out.push(Lease {
                    pid: p.pid,
                    generation,
                    quantum,
                    owner: owner.clone(),
                    expires_at,
                    process: p,
                    resume,
                    inbox: InboxSummary { unread, interrupts },
                    pinned,
                });
            }
            Ok(out)
        })
    }

    /// Records a model output refused before dispatch (bad JSON, unknown tool,
    /// bad arguments, not exactly one call): the model call, its tokens, and a
    /// `rejected` audit record. The process keeps its lease for the repair turn.
    pub fn record_rejection(
        &self,
        lease: &Lease,
        model_call: &ModelCallRecord,
        tool: Option<&str>,
        raw_args: Option<&str>,
        error: &str,
    ) -> Result<(), KernelError> {
        self.write(|tx| {
            let now = self.now();
            check_lease(tx, lease)?;
            tx.insert_model_call(lease.pid, lease.quantum, model_call, now)?;
            tx.charge(lease.pid, model_call.usage, model_call.cost_micros, false)?;
            tx.append_audit(
                &AuditDraft {
                    actor: Actor::Process(lease.pid),
                    kind: AuditKind::Tool,
                    action: AuditAction::rejected(tool),
                    pid: Some(lease.pid),
                    args: json!({ "raw": raw_args }),
                    decision: None,
                    grant: None,
                    outcome: Outcome::Rejected,
                    result: Some(error.to_string()),
                    detail: Some(first_line(error)),
                },
                now,
            )?;
            Ok(())
        })
    }

    /// Records a model call attempt that got no answer and was retried (a
    /// timeout, a 5xx), so the transcript shows it; nothing is charged.
    pub fn record_attempt(&self, lease: &Lease, model_call: &ModelCallRecord) -> Result<(), KernelError> {
        self.write(|tx| {
            check_lease(tx, lease)?;
            tx.insert_model_call(lease.pid, lease.quantum, model_call, self.now())?;
            Ok(())
        })
    }

    /// Writes the intent record of an external effect. After this, a crash
    /// before [`Kernel::commit_quantum`] leaves an explicit unknown outcome.
    pub fn begin_effect(&self, lease: &Lease, intent: &EffectIntent) -> Result<(), KernelError> {
        self.write(|tx| {
            let now = self.now();
            check_lease(tx, lease)?;
            let args: serde_json::Value = serde_json::from_str(&intent.call.args).unwrap_or(serde_json::Value::Null);
            let (_, record) = tx.append_audit_ref(
                &AuditDraft {
                    actor: Actor::Process(lease.pid),
                    kind: AuditKind::Effect,
                    action: AuditAction::Tool(ToolName::new(&intent.call.tool)?),
                    pid: Some(lease.pid),
                    args,
                    decision: None,
                    grant: None,
                    outcome: Outcome::Pending,
                    result: None,
                    detail: Some("external effect starting".to_string()),
                },
                now,
            )?;
            // An approved call belongs to the quantum that parked it.
            let quantum = lease.resume.as_ref().map_or(lease.quantum, |r| r.quantum);
            tx.insert_effect(lease.pid, quantum, &intent.call, record, now)
        })
    }

    /// Commits a quantum in one transaction: the model call, the tool call's
    /// audit record with its capability checks, and then by its [`Action`]:
    /// the result, transcript entry and next state; or the approval request
    /// and the park; or the kernel call itself. Refused with `Stale` if the
    /// lease was lost.
    pub fn commit_quantum(&self, lease: &Lease, commit: &QuantumCommit) -> Result<CommitReceipt, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let leased = check_lease(tx, lease)?;
            let pid = lease.pid;
            match &commit.model_call {
                Some(m) => {
                    tx.insert_model_call(pid, lease.quantum, m, now)?;
                    tx.charge(pid, m.usage, m.cost_micros, true)?;
                }
                None => tx.charge_tool_call(pid)?,
            }
            // An approved call completes here, whatever it does now.
            if lease.resume.is_some() {
                tx.take_parked(pid)?;
            }
            tx.mark_read(&commit.seen, now)?;
            let args: serde_json::Value = serde_json::from_str(&commit.call.args).unwrap_or(serde_json::Value::Null);
            // An approved call that asks again (a need its approval is not
            // for) parks as asking, not as approved.
            let approved = lease.resume.is_some() && !matches!(commit.action, Action::Ask { .. });
            let action = AuditAction::Tool(ToolName::new(&commit.call.tool)?);
            // `refusal`: the check of a kernel call the kernel refused in the commit.
            let audit = |outcome: Outcome, result: Option<&str>, detail: Option<String>, refusal: Option<&Check>| {
                let mut all = commit.checks.clone();
                all.extend(refusal.cloned());
                let (decision, grant, checks) = summarize(&all, approved);
                // A denial always says so, even one no check stands behind
                // (an approved call whose request row is gone).
                let decision = decision.or_else(|| (outcome == Outcome::Denied).then_some(AuditDecision::Deny));
                AuditDraft {
                    actor: Actor::Process(pid),
                    kind: AuditKind::Tool,
                    action: action.clone(),
                    pid: Some(pid),
                    args: args.clone(),
                    decision,
                    grant,
                    outcome,
                    result: result.map(str::to_string),
                    detail: join_detail(detail, checks.as_deref()),
                }
            };
            let finish = |result: &ToolResultRecord,
                          next: &Next,
                          refusal: Option<&Check>,
                          after: &[AuditDraft]|
             -> Result<ProcState, KernelError> {
                let detail = (result.outcome != Outcome::Ok).then(|| first_line(&result.content));
                tx.append_audit(&audit(result.outcome, Some(&result.content), detail, refusal), now)?;
                for record in after {
                    tx.append_audit(record, now)?;
                }
                // An approved call belongs to the quantum that made it.
                let quantum = lease.resume.as_ref().map_or(lease.quantum, |r| r.quantum);
                tx.insert_transcript(pid, quantum, &commit.call, result, now)?;
                tx.take_effect(pid)?;
                let event = match next {
                    Next::Continue => Event::Yield { not_before: None },
                    Next::Exit { code, result } => Event::Exit { code: *code, result: result.clone() },
                    Next::Fail { kind, error } => Event::Fail { kind: *kind, error: error.clone() },
                };
                // Nothing above changed the process's state or generation:
                // transition the row read by the lease check.
                Ok(apply_read(tx, &leased, event, now)?.0)
            };
            let park = |on: WaitOn,
                        request: Option<RequestKind>,
                        hints: Option<&crate::ipc::ToolHints>|
             -> Result<ProcState, KernelError> {
                let detail = match &request {
                    Some(RequestKind::Approval { resource, right }) => {
                        format!("parked: {right} {resource} asks for approval")
                    }
                    Some(RequestKind::Question { .. }) => "parked: asked the operator".to_string(),
                    None => format!("parked: waiting on {on}"),
                };
                let (record, at) = tx.append_audit_ref(&audit(Outcome::Parked, None, Some(detail), None), now)?;
                let (on, request) = match request {
                    Some(kind) => {
                        let id = tx.insert_request(
                            pid,
                            &kind,
                            hints,
                            &commit.call.tool,
                            &commit.call.args,
                            &record.args_sha256,
                            at,
                            now,
                        )?;
                        if let RequestKind::Approval { resource, right } = &kind {
                            let bind = binding::request_record(
                                pid,
                                id,
                                &commit.call.tool,
                                &record.args_sha256,
                                resource,
                                *right,
                            );
                            tx.append_audit(&bind, now)?;
                        }
                        (WaitOn::Human(id), Some(id))
                    }
                    None => (on, None),
                };
                tx.insert_parked(pid, lease.quantum, &commit.call, request, now)?;
                Ok(apply_read(tx, &leased, Event::Park(on), now)?.0)
            };
            let state = match &commit.action {
                Action::Done { result, next } => finish(result, next, None, &[])?,
                Action::Ask { resource, right, hints } => park(
                    WaitOn::Human(crate::ids::RequestId(0)),
                    Some(RequestKind::Approval { resource: resource.clone(), right: *right }),
                    hints.as_ref(),
                )?,
                Action::Syscall(call) => match syscalls::execute(tx, &leased, call, now)? {
                    SyscallOutcome::Done(result) => finish(&result, &Next::Continue, None, &[])?,
                    SyscallOutcome::Spawned(result, after) => finish(&result, &Next::Continue, None, &after)?,
                    SyscallOutcome::Denied(check, content) => {
                        let result = ToolResultRecord { outcome: Outcome::Denied, content };
                        finish(&result, &Next::Continue, Some(&check), &[])?
                    }
                    SyscallOutcome::Park(on, request) => park(on, request, None)?,
                },
            };
            Ok(CommitReceipt { state })
        })
    }

    /// Ends a quantum that dispatched nothing: back to runnable after `backoff`
    /// (a transient model failure), or failed. The model call, if one was
    /// made, is recorded with it.
    pub fn end_quantum(
        &self,
        lease: &Lease,
        model_call: Option<&ModelCallRecord>,
        outcome: QuantumEnd,
    ) -> Result<CommitReceipt, KernelError> {
        self.write(|tx| {
            let now = self.now();
            check_lease(tx, lease)?;
            if let Some(m) = model_call {
                tx.insert_model_call(lease.pid, lease.quantum, m, now)?;
                tx.charge(lease.pid, m.usage, m.cost_micros, false)?;
            }
            let event = match &outcome {
                QuantumEnd::Backoff(d) => Event::Yield { not_before: Some(now.plus(*d)) },
                QuantumEnd::Fail { kind, error } => Event::Fail { kind: *kind, error: error.clone() },
            };
            let (state, _, _) = apply(tx, lease.pid, Some(lease.generation), event, now)?;
            Ok(CommitReceipt { state })
        })
    }

    /// Gives a lease back without finishing the quantum (scheduler shutdown).
    pub fn release(&self, lease: &Lease) -> Result<(), KernelError> {
        self.write(|tx| {
            let now = self.now();
            check_lease(tx, lease)?;
            apply(tx, lease.pid, Some(lease.generation), Event::Release, now)?;
            tx.refund_quantum(lease.pid, lease.quantum)?;
            Ok(())
        })
    }

    /// Gives back every lease `owner` holds on a process not in `keep`:
    /// leases it holds without knowing, taken by a claim whose COMMIT's
    /// fate it could not find out ([`crate::StoreError::CommitUnknown`]).
    /// Returns their pids.
    pub fn release_orphans(&self, owner: &SchedulerId, keep: &[Pid]) -> Result<Vec<Pid>, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let mut out = Vec::new();
            for (pid, generation) in tx.leased_by(owner)? {
                if !keep.contains(&pid) {
                    apply(tx, pid, Some(generation), Event::Release, now)?;
                    out.push(pid);
                }
            }
            Ok(out)
        })
    }

    /// Extends every lease `owner` holds; returns how many.
    pub fn renew_leases(&self, owner: &SchedulerId, ttl: Duration) -> Result<usize, KernelError> {
        self.write(|tx| tx.renew_leases(owner, self.now().plus(ttl)))
    }

    /// Pids (with generation) currently leased by `owner`.
    pub fn leased_by(&self, owner: &SchedulerId) -> Result<Vec<(Pid, crate::ids::Generation)>, KernelError> {
        self.read(|tx| tx.leased_by(owner))
    }

    /// Returns every process whose lease lapsed to runnable. One whose external
    /// effect had started gets an explicit unknown outcome instead of a re-run.
    pub fn recover_expired(&self) -> Result<Vec<Pid>, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let mut out = Vec::new();
            for p in tx.expired_leases(now)? {
                match apply(tx, p.pid, Some(p.generation), Event::LeaseExpired, now) {
                    Ok(_) => {}
                    // Another scheduler recovered it since the scan read it
                    // (on PostgreSQL the scan is not under the write order):
                    // nothing was written for it here; the rest go on.
                    Err(KernelError::Stale { .. }) => continue,
                    Err(e) => return Err(e),
                }
                tx.refund_quantum(p.pid, p.usage.quanta)?;
                out.push(p.pid);
            }
            Ok(out)
        })
    }

    /// What a scheduler (`owner`) has to look forward to: whether any process
    /// is runnable, the earliest backoff deadline, the earliest sleep
    /// deadline, and when the earliest lease of another scheduler expires.
    /// Looking for other schedulers' leases costs a pass over the running
    /// processes: `foreign` says whether to (a busy scheduler asks only now
    /// and then).
    pub fn runnable_outlook(&self, owner: &SchedulerId, foreign: bool) -> Result<Outlook, KernelError> {
        self.read(|tx| {
            Ok(Outlook {
                runnable: tx.any_runnable()?,
                runnable_now: tx.any_runnable_now(self.now())?,
                next_ready: tx.next_ready_at()?,
                next_timer: tx.next_timer()?,
                leased_elsewhere: if foreign { tx.next_foreign_expiry(owner)? } else { None },
            })
        })
    }
}

/// See [`Kernel::runnable_outlook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outlook {
    /// Some process is runnable (due now or after a backoff).
    pub runnable: bool,
    /// Some process is runnable now (not backing off).
    pub runnable_now: bool,
    /// The earliest backoff deadline among runnable processes.
    pub next_ready: Option<Timestamp>,
    /// The earliest sleep deadline among waiting processes.
    pub next_timer: Option<Timestamp>,
    /// The earliest lease expiry among processes running under other
    /// schedulers (one that died leaves them until then).
    pub leased_elsewhere: Option<Timestamp>,
}

/// How a quantum that dispatched nothing ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantumEnd {
    /// Transient failure: runnable again after this delay.
    Backoff(Duration),
    /// The process cannot go on.
    Fail {
        /// Category.
        kind: FailureKind,
        /// One-line reason.
        error: String,
    },
}
