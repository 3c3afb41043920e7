//! Capability operations: authorizing a call, granting, revoking, listing.

use serde_json::json;

use super::Kernel;
use crate::actor::Actor;
use crate::audit::{AuditDraft, AuditKind, KernelAction, Outcome};
use crate::caps::{Basis, Decision, Effect, Grant, GrantSpec, Resource, Right, decide};
use crate::error::KernelError;
use crate::ids::{GrantId, Pid};
use crate::store::Tx;
use crate::syscall::{Check, Kinship, Need};
use crate::time::Timestamp;

/// The verdict on a call: the decisive effect and every check behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `allow`: dispatch; `ask`: park on an approval; `deny`: tell the model.
    pub effect: Effect,
    /// One per (resource, right) the call touches.
    pub checks: Vec<Check>,
}

impl Authorization {
    /// The denial as the model reads it.
    pub fn denial(&self) -> String {
        let denied: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.decision.effect == Effect::Deny)
            .map(|c| match c.decision.grant {
                Some(g) => format!("{} {} (grant {g} denies it)", c.need.right, c.need.resource),
                None => format!("{} {} (no grant of yours covers it)", c.need.right, c.need.resource),
            })
            .collect();
        format!("permission denied: {}", denied.join("; "))
    }

    /// The check that asked, if the verdict is `ask`.
    pub fn asking(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.decision.effect == Effect::Ask)
    }
}

/// Where a grant stands, for `libos caps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    /// It can decide checks.
    Live,
    /// It, or a grant it derives from, was revoked.
    Revoked,
    /// It, or a grant it derives from, expired.
    Expired,
    /// Its uses, or those of a grant it derives from, ran out.
    UsedUp,
}

impl GrantStatus {
    /// `live`, `revoked`, `expired`, `used up`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Live => "live",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Expired => "expired",
            GrantStatus::UsedUp => "used up",
        }
    }
}

fn checks_at(tx: &Tx<'_>, pid: Pid, needs: &[Need], now: Timestamp) -> Result<Vec<Check>, KernelError> {
    let live = tx.live_grants(pid, now)?;
    let me = tx.process(pid)?;
    let needs_kin = needs.iter().any(|n| n.kinship != Kinship::None);
    let children = if needs_kin { tx.children(pid)? } else { Vec::new() };
    Ok(needs
        .iter()
        .map(|need| {
            let kin = match need.kinship {
                Kinship::None => false,
                Kinship::ParentOrChild(t) => me.ppid == Some(t) || children.contains(&t),
                Kinship::Child(t) => children.contains(&t),
            };
            let decision = if kin {
                Decision { effect: Effect::Allow, grant: None, basis: Basis::Kinship }
            } else {
                decide(&live, &need.resource, need.right)
            };
            Check { need: need.clone(), decision }
        })
        .collect())
}

fn verdict(checks: &[Check], approved: Option<(&Resource, Right)>) -> Effect {
    checks
        .iter()
        .map(|c| match c.decision.effect {
            // The approval stands in for the ask that parked the call, and
            // for no other; a deny still wins.
            Effect::Ask if approved.is_some_and(|(r, right)| c.need.resource == *r && c.need.right == right) => {
                Effect::Allow
            }
            e => e,
        })
        .max()
        .unwrap_or(Effect::Allow)
}

impl Kernel {
    /// Records a refusal decided outside a quantum's commit, while a call
    /// runs (a connection a program or `http_request` attempted, decided
    /// live): a denial of `pid`'s, `action` naming what was refused, with
    /// its check. Its kind is `kernel`, so it is not taken for a call.
    pub fn record_denial(
        &self,
        pid: Pid,
        action: KernelAction,
        args: serde_json::Value,
        check: &Check,
        detail: &str,
    ) -> Result<(), KernelError> {
        self.write(|tx| {
            let draft = AuditDraft {
                actor: Actor::Process(pid),
                kind: AuditKind::Kernel,
                action: action.into(),
                pid: Some(pid),
                args: args.clone(),
                decision: Some(check.decision.effect.into()),
                grant: check.decision.grant,
                outcome: Outcome::Denied,
                result: None,
                detail: Some(format!("{detail} [{check}]")),
            };
            tx.append_audit(&draft, self.now())?;
            Ok(())
        })
    }

    /// Decides a call that needs `needs`. With `approved` (a human approved
    /// this exact call, which asked for that resource and right), the `ask`
    /// of that need counts as `allow`; any other `ask` still asks, a `deny`
    /// still wins, and a revoked grant matches nothing. Counted grants that
    /// allow it are spent here, atomically; one with no uses left denies.
    pub fn authorize(
        &self,
        pid: Pid,
        needs: &[Need],
        approved: Option<(&Resource, Right)>,
    ) -> Result<Authorization, KernelError> {
        if needs.is_empty() {
            // Nothing to check (`exit`, `now`, own inbox, own children): no transaction.
            return Ok(Authorization { effect: Effect::Allow, checks: Vec::new() });
        }
        let now = self.now();
        let first = self.read(|tx| {
            let checks = checks_at(tx, pid, needs, now)?;
            let mut counted = false;
            for c in &checks {
                if let Some(g) = c.decision.grant {
                    counted |= tx.grant_is_counted(g)?;
                }
            }
            Ok((checks, counted))
        })?;
        let (checks, counted) = first;
        let effect = verdict(&checks, approved);
        if effect != Effect::Allow || !counted {
            return Ok(Authorization { effect, checks });
        }
        // Decide again under the write lock and spend the uses; if a counter
        // ran out meanwhile, the whole spend rolls back and the call is denied.
        let spent = self.write(|tx| {
            let checks = checks_at(tx, pid, needs, self.now())?;
            if verdict(&checks, approved) != Effect::Allow {
                return Ok(Err(checks));
            }
            for c in &checks {
                if let Some(g) = c.decision.grant
                    && tx.grant_is_counted(g)?
                    && !tx.spend_grant(g)?
                {
                    return Err(KernelError::Refused(format!("grant {g} has no uses left")));
                }
            }
            Ok(Ok(checks))
        });
        match spent {
            Ok(Ok(checks)) => Ok(Authorization { effect: Effect::Allow, checks }),
            Ok(Err(checks)) => Ok(Authorization { effect: verdict(&checks, approved), checks }),
            Err(KernelError::Refused(_)) => {
                let checks = self.read(|tx| checks_at(tx, pid, needs, self.now()))?;
                let effect = verdict(&checks, approved).max(Effect::Deny);
                Ok(Authorization { effect, checks })
            }
            Err(e) => Err(e),
        }
    }

    /// Adds a grant to a live process (an operator's, trusted as given).
    pub fn grant(&self, pid: Pid, spec: &GrantSpec, by: &Actor) -> Result<GrantId, KernelError> {
        self.write(|tx| {
            let now = self.now();
            let p = tx.process(pid)?;
            if p.state.is_terminal() {
                return Err(KernelError::Refused(format!("process {pid} has ended ({})", p.state)));
            }
            let id = tx.insert_grant(pid, spec, None, by, now)?;
            tx.append_audit(
                &AuditDraft {
                    actor: by.clone(),
                    kind: AuditKind::Operator,
                    action: KernelAction::Grant.into(),
                    pid: Some(pid),
                    args: json!({"grant": spec.to_string()}),
                    decision: None,
                    grant: Some(id),
                    outcome: Outcome::Ok,
                    result: None,
                    detail: Some(format!("grant {id} to process {pid}: {spec}")),
                },
                now,
            )?;
            Ok(id)
        })
    }

    /// Revokes a grant and, from the next check on, everything derived from
    /// it. Returns the grant and how many grants derive from it.
    pub fn revoke(&self, id: GrantId, by: &Actor) -> Result<(Grant, u64), KernelError> {
        self.write(|tx| {
            let now = self.now();
            let (g, derived) = tx.revoke_grant(id, now)?.ok_or(KernelError::NoSuchGrant(id))?;
            if g.revoked_at.is_some() {
                return Err(KernelError::Refused(format!("grant {id} was already revoked")));
            }
            tx.append_audit(
                &AuditDraft {
                    actor: by.clone(),
                    kind: AuditKind::Operator,
                    action: KernelAction::Revoke.into(),
                    pid: Some(g.holder),
                    args: json!({"grant": id.get(), "derived": derived}),
                    decision: None,
                    grant: Some(id),
                    outcome: Outcome::Ok,
                    result: None,
                    detail: Some(format!("revoked grant {id} and {derived} derived from it")),
                },
                now,
            )?;
            Ok((g, derived))
        })
    }

    /// Every grant a process holds or held, with where it stands.
    pub fn caps(&self, pid: Pid) -> Result<Vec<(Grant, GrantStatus)>, KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            let now = self.now();
            let live: Vec<GrantId> = tx.live_grants(pid, now)?.into_iter().map(|g| g.id).collect();
            let mut out = Vec::new();
            for g in tx.grants_of(pid)? {
                let status = if live.contains(&g.id) { GrantStatus::Live } else { dead_reason(tx, &g, now)? };
                out.push((g, status));
            }
            Ok(out)
        })
    }
}

/// Why a grant that is not live stopped matching (the first cause along its chain).
fn dead_reason(tx: &Tx<'_>, g: &Grant, now: Timestamp) -> Result<GrantStatus, KernelError> {
    let mut cursor = Some(g.clone());
    while let Some(c) = cursor {
        if c.revoked_at.is_some() {
            return Ok(GrantStatus::Revoked);
        }
        if c.expires_at.is_some_and(|t| t <= now) {
            return Ok(GrantStatus::Expired);
        }
        if c.uses_left.is_some_and(|n| n <= 0) {
            return Ok(GrantStatus::UsedUp);
        }
        cursor = match c.parent {
            Some(p) => tx.grant(p)?,
            None => None,
        };
    }
    Ok(GrantStatus::Revoked)
}
