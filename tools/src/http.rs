//! The operator's side of `http_request`: headers libos adds for a host
//! (`[http."api.github.com"] headers = { Authorization = "env:GITHUB_TOKEN" }`).
//!
//! They are secrets, so they live only here: their values stay in the
//! environment until a request to that host is sent ([`OperatorHeaders::values`]),
//! and they never appear in a call's arguments, its result, the audit,
//! a transcript or an error (errors name the header and the variable, never
//! the value). A model may not send a header of the same name to that
//! host, and never `Authorization`, `Proxy-Authorization`, `Cookie` or
//! `Host` to any. The configuration is parsed by the runtime (`libos.toml`);
//! this module holds what it parsed and reads the values.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Reads an environment variable (the process environment, or a test's).
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// One operator header: its name and the variable its value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorHeader {
    /// The header's name, lowercase.
    pub name: String,
    /// The environment variable holding its value.
    pub var: String,
}

/// What the operator configured for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostHeaders {
    /// The headers, by lowercase name.
    pub headers: Vec<OperatorHeader>,
    /// Whether they may be sent over plain `http://` (default: only `https://`).
    pub allow_http: bool,
}

/// The operator's headers for every configured host (canonical host names,
/// any port).
#[derive(Clone)]
pub struct OperatorHeaders {
    hosts: BTreeMap<String, HostHeaders>,
    env: EnvReader,
}

impl fmt::Debug for OperatorHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and variables only: values are read when a request is sent.
        f.debug_struct("OperatorHeaders").field("hosts", &self.hosts).finish_non_exhaustive()
    }
}

impl PartialEq for OperatorHeaders {
    fn eq(&self, other: &Self) -> bool {
        self.hosts == other.hosts
    }
}

impl Default for OperatorHeaders {
    fn default() -> Self {
        OperatorHeaders::new(BTreeMap::new())
    }
}

impl OperatorHeaders {
    /// Headers for `hosts` (keys canonical, see `libos_core::caps::net::host`),
    /// their values read from the process environment.
    pub fn new(hosts: BTreeMap<String, HostHeaders>) -> OperatorHeaders {
        OperatorHeaders { hosts, env: Arc::new(|var| std::env::var(var).ok()) }
    }

    /// The same headers, their values read through `env` (tests).
    pub fn with_env(self, env: EnvReader) -> OperatorHeaders {
        OperatorHeaders { env, ..self }
    }

    /// Whether no host has any.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The configured hosts, with their headers' names and variables.
    pub fn hosts(&self) -> &BTreeMap<String, HostHeaders> {
        &self.hosts
    }

    /// What is configured for `host` (canonical), if anything.
    pub fn for_host(&self, host: &str) -> Option<&HostHeaders> {
        self.hosts.get(host)
    }

    /// The values for `host`, read now, as (lowercase name, value); an
    /// error names the header and its variable, never a value.
    pub fn values(&self, host: &str) -> Result<Vec<(String, String)>, String> {
        let Some(h) = self.hosts.get(host) else { return Ok(Vec::new()) };
        h.headers
            .iter()
            .map(|o| match (self.env)(&o.var).filter(|v| !v.is_empty()) {
                Some(v) => Ok((o.name.clone(), v)),
                None => Err(format!(
                    "the operator's header `{}` for {host} comes from environment variable {}, which is not set",
                    o.name, o.var
                )),
            })
            .collect()
    }
}
