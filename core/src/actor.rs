//! Who did something: a process, a named human, or the kernel itself.

use std::fmt;
use std::str::FromStr;

use crate::ids::Pid;

/// The actor of an audited action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A process acting through a tool call.
    Process(Pid),
    /// A person at the CLI or console, by name (`operator` by default).
    Human(String),
    /// The kernel or a scheduler acting on its own (leases, recovery, failures).
    Kernel,
}

impl Actor {
    /// The default operator.
    pub fn operator() -> Actor {
        Actor::Human("operator".to_string())
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Process(pid) => write!(f, "pid:{pid}"),
            Actor::Human(name) => write!(f, "human:{name}"),
            Actor::Kernel => f.write_str("kernel"),
        }
    }
}

impl FromStr for Actor {
    type Err = String;
    fn from_str(s: &str) -> Result<Actor, String> {
        if s == "kernel" {
            return Ok(Actor::Kernel);
        }
        if let Some(p) = s.strip_prefix("pid:") {
            return p.parse().map(Actor::Process);
        }
        if let Some(name) = s.strip_prefix("human:").filter(|n| !n.is_empty()) {
            return Ok(Actor::Human(name.to_string()));
        }
        Err(format!("invalid actor `{s}`: expected pid:N, human:NAME or kernel"))
    }
}
