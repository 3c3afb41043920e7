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

use libos_kernel::caps::net::{host as canonical_host, is_exact};
use libos_kernel::caps::{Effect, Resource, ResourceKind, Right, decide};
use libos_kernel::syscall::Need;
use libos_kernel::{GrantStatus, Kernel, KernelError, Pid};
use libos_sandbox::{NetGate, Reach, Use};

/// Decides connections for one process.
#[derive(Debug)]
pub struct GrantGate {
    kernel: Kernel,
    pid: Pid,
}

impl GrantGate {
    /// The gate for `pid`, if it holds a live `net:` grant (without one,
    /// its programs get no network at all, not even a proxy to ask).
    pub fn for_process(kernel: &Kernel, pid: Pid) -> Result<Option<GrantGate>, KernelError> {
        let any = kernel
            .caps(pid)?
            .iter()
            .any(|(g, status)| *status == GrantStatus::Live && g.resource.kind == ResourceKind::Net);
        Ok(any.then(|| GrantGate { kernel: kernel.clone(), pid }))
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
                Err(format!("{right} {resource} is denied now (grant {} denies it)", g.id))
            }
            Some(g) if is_exact(&g.resource.name) => Ok(Reach::Any),
            Some(_) => Ok(Reach::Public),
            None => Err(format!("no grant allows {right} {resource} any more")),
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
            Effect::Ask => Err(format!("{right} net:{host}:{port} needs approval, which a connection cannot wait for")),
            Effect::Deny => Err(auth.denial()),
        }
    }
}
