//! The gate a program's network connections pass: each destination the
//! sandbox's proxy is asked for is decided against the process's grants,
//! live, as any call is (so counted grants are spent, revoked ones no
//! longer decide).
//!
//! A tunnel or a request that sends data needs `write net:HOST:PORT`, a
//! plain `GET`/`HEAD` `read`. A connection cannot park: `ask` refuses it,
//! saying so. An allowed host reaches loopback, private and link-local
//! addresses only when the deciding grant names it exactly.
//!
//! `http_request` asks the gate too: its first connection was decided with
//! the call (and may have been approved on an `ask`), so it asks only how
//! far the deciding grant reaches ([`NetGate::reach`]); every redirect is a
//! new destination, decided live like a program's connection.
//!
//! A refused destination is an audited denial with its check (a `connect`
//! record of the process), at most [`DENIALS_AUDITED`] per call.

use libos_kernel::audit::KernelAction;
use libos_kernel::caps::net::{host as canonical_host, is_exact};
use std::sync::atomic::{AtomicUsize, Ordering};

use libos_kernel::caps::{Basis, Decision, Effect, Resource, ResourceKind, Right, decide};
use libos_kernel::syscall::{Check, Need};
use libos_kernel::{GrantStatus, Kernel, KernelError, Pid};
use libos_sandbox::{NetGate, Reach, Use};
use serde_json::json;

/// Decides connections for one process, during one call.
#[derive(Debug)]
pub struct GrantGate {
    kernel: Kernel,
    pid: Pid,
    /// The call the connections are made for.
    tool: String,
    /// Refusals audited so far (see [`DENIALS_AUDITED`]).
    denials: AtomicUsize,
}

/// Refused connections of one call audited one by one; past this, one
/// record says the rest are in the call's result only (a program retrying
/// in a loop must not flood the audit log).
pub const DENIALS_AUDITED: usize = 16;

impl GrantGate {
    /// The gate for `pid`'s call of `tool`, if it holds a live `net:` grant
    /// (without one, its programs get no network at all, not even a proxy
    /// to ask).
    pub fn for_process(kernel: &Kernel, pid: Pid, tool: &str) -> Result<Option<GrantGate>, KernelError> {
        let any = kernel
            .caps(pid)?
            .iter()
            .any(|(g, status)| *status == GrantStatus::Live && g.resource.kind == ResourceKind::Net);
        Ok(any.then(|| GrantGate { kernel: kernel.clone(), pid, tool: tool.to_string(), denials: AtomicUsize::new(0) }))
    }

    /// Audits a refused destination as a denial with its check (every
    /// refusal of authority is one), up to [`DENIALS_AUDITED`] per call;
    /// returns `why`, the refusal the caller reports.
    fn refused(&self, host: &str, port: u16, right: Right, decision: Decision, why: String) -> String {
        let n = self.denials.fetch_add(1, Ordering::Relaxed);
        if n > DENIALS_AUDITED {
            return why;
        }
        let need = Need::grant(Resource::net(host, port), right);
        let check = Check { need, decision };
        let args = json!({"tool": self.tool, "host": host, "port": port, "right": right.as_str()});
        let detail = if n == DENIALS_AUDITED {
            format!("{}: {why}; further refusals of this call are in its result only", self.tool)
        } else {
            format!("{}: {why}", self.tool)
        };
        if let Err(e) = self.kernel.record_denial(self.pid, KernelAction::Connect, args, &check, &detail) {
            // The connection is refused either way; the record is what failed.
            tracing::warn!(pid = self.pid.get(), "a refused connection could not be audited: {e}");
        }
        why
    }
}

fn right_for(use_: Use) -> Right {
    match use_ {
        Use::Read => Right::Read,
        Use::Write => Right::Write,
    }
}

impl NetGate for GrantGate {
    fn reach(&self, host: &str, port: u16, use_: Use) -> Result<Reach, String> {
        let host = canonical_host(host)?;
        let right = right_for(use_);
        let resource = Resource::net(&host, port);
        let caps = self.kernel.caps(self.pid).map_err(|e| format!("the grants could not be checked: {e}"))?;
        let live = caps.iter().filter(|(_, status)| *status == GrantStatus::Live).map(|(g, _)| g);
        let decision = decide(live, &resource, right);
        let grant = caps.iter().map(|(g, _)| g).find(|g| Some(g.id) == decision.grant);
        match grant {
            Some(g) if decision.effect == Effect::Deny => {
                let why = format!("{right} {resource} is denied now (grant {} denies it)", g.id);
                Err(self.refused(&host, port, right, decision, why))
            }
            Some(g) if is_exact(&g.resource.name) => Ok(Reach::Any),
            Some(_) => Ok(Reach::Public),
            None => {
                let why = format!("no grant allows {right} {resource} any more");
                Err(self.refused(&host, port, right, decision, why))
            }
        }
    }

    fn decide(&self, host: &str, port: u16, use_: Use) -> Result<Reach, String> {
        let host = canonical_host(host)?;
        let right = right_for(use_);
        let need = Need::grant(Resource::net(&host, port), right);
        let auth = self
            .kernel
            .authorize(self.pid, &[need], None)
            .map_err(|e| format!("the grants could not be checked: {e}"))?;
        match auth.effect {
            Effect::Allow => {
                let grant = auth.checks.first().and_then(|c| c.decision.grant);
                let caps = self.kernel.caps(self.pid).map_err(|e| format!("the grants could not be checked: {e}"))?;
                let exact = caps.iter().any(|(g, _)| Some(g.id) == grant && is_exact(&g.resource.name));
                Ok(if exact { Reach::Any } else { Reach::Public })
            }
            Effect::Ask => {
                let why = format!("{right} net:{host}:{port} needs approval, which a connection cannot wait for");
                let decision = auth.asking().map(|c| c.decision.clone());
                Err(self.refused(&host, port, right, decision.unwrap_or(Decision::refused(Basis::Grants)), why))
            }
            Effect::Deny => {
                let decision =
                    auth.checks.iter().find(|c| c.decision.effect == Effect::Deny).map(|c| c.decision.clone());
                Err(self.refused(
                    &host,
                    port,
                    right,
                    decision.unwrap_or(Decision::refused(Basis::Grants)),
                    auth.denial(),
                ))
            }
        }
    }
}
