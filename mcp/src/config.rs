//! The `[mcp.NAME]` tables of `libos.toml`, validated.
//!
//! ```toml
//! [mcp.time]                           # a stdio server, run in the sandbox
//! command = "target/mcp-py/bin/mcp-server-time"   # a name on PATH, or a path (relative: to the file)
//! args = ["--local-timezone", "UTC"]
//! env = { TZ = "UTC", TOKEN = "env:TIME_TOKEN" }  # "env:VAR": read from libos's environment at start
//! read = ["/opt/tzdata"]               # extra read-only paths the server needs
//! timeout_s = 30                       # per call; default 60 (a start gets at least 30)
//! idle_s = 300                         # stopped after this long unused; default 300
//! scope = "workspace"                  # one server per workspace (default), or "process"
//!
//! [mcp.remote]                         # a streamable-HTTP server
//! url = "http://127.0.0.1:8000/mcp"
//! headers = { Authorization = "env:REMOTE_TOKEN" }  # values only "env:VAR"
//! ```
//!
//! Secrets stay in the operator's environment: an `env:VAR` value is read
//! when the server starts, passed to it, and never stored or logged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libos_core::caps::ResourcePattern;
use serde::Deserialize;

/// Default time a call (or a start) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest `timeout_s` allowed.
pub const MAX_TIMEOUT_S: u64 = 3600;
/// Default idle time before a server is stopped.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(300);

/// A configuration error: the key it is about (`mcp.NAME.KEY`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The dotted key, e.g. `mcp.git.timeout_s`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

fn bad(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), message: message.into() }
}

/// A server's name: `^[a-z0-9][a-z0-9_-]*$` with no `__`, so that a tool
/// shown to a model as `SERVER__TOOL` splits one way only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerName(String);

impl ServerName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<ServerName, String> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !first_ok || !rest_ok {
            return Err(format!(
                "server name `{}` must be lowercase letters, digits, `_` and `-`, starting with a letter or digit",
                name.escape_debug()
            ));
        }
        if name.contains("__") {
            return Err(format!("server name `{name}` must not contain `__` (it separates server and tool)"));
        }
        Ok(ServerName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value given to a server: written in the file, or read from libos's
/// environment when the server starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// Exactly this text.
    Literal(String),
    /// The value of this environment variable of libos's, at start.
    FromEnv(String),
}

impl EnvValue {
    fn parse(text: &str) -> EnvValue {
        match text.strip_prefix("env:") {
            Some(var) => EnvValue::FromEnv(var.to_string()),
            None => EnvValue::Literal(text.to_string()),
        }
    }
}

/// How a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A program started in the sandbox, spoken to over its standard input and output.
    Stdio(Stdio),
    /// A streamable-HTTP endpoint.
    Http(Http),
}

/// A stdio server's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stdio {
    /// The program: a name looked up on `PATH` when it starts, or a path
    /// (made absolute against the configuration file's directory).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment beyond `PATH` and `HOME`, in key order.
    pub env: Vec<(String, EnvValue)>,
    /// Extra paths it may read (absolute).
    pub read: Vec<PathBuf>,
    /// Where it may connect (`net:` patterns without the prefix: `HOST`,
    /// `HOST:PORT`, `*.DOMAIN`, `*`), through the sandbox's proxy; none: no
    /// network at all. The operator grants these to the server itself.
    pub net: Vec<ResourcePattern>,
}

/// A streamable-HTTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// Its endpoint (`http://` or `https://`).
    pub url: String,
    /// Headers sent with every request: name and the environment variable
    /// holding the value.
    pub headers: Vec<(String, String)>,
}

/// Which callers share one server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every process with the same workspace (the default: a server's state
    /// is the workspace's, and starting one per process costs a start each).
    Workspace,
    /// Each process has its own (for servers that keep per-session state a
    /// process must not see another's of).
    Process,
}

/// One configured server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Its name.
    pub name: ServerName,
    /// How it is reached.
    pub transport: Transport,
    /// How long a call, or a start, may take.
    pub timeout: Duration,
    /// How long it may sit unused before it is stopped.
    pub idle: Duration,
    /// Who shares a server process.
    pub scope: Scope,
}

impl ServerConfig {
    /// `stdio` or `http`.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Stdio(_) => "stdio",
            Transport::Http(_) => "http",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerToml {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    read: Vec<PathBuf>,
    #[serde(default)]
    net: Vec<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout_s: Option<u64>,
    idle_s: Option<u64>,
    scope: Option<String>,
}

/// Parses the `mcp` table of a configuration file whose directory is `base`.
pub fn parse(table: &toml::Table, base: &Path) -> Result<BTreeMap<ServerName, ServerConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, value) in table {
        let key = format!("mcp.{name}");
        let server = ServerName::new(name).map_err(|m| bad(&key, m))?;
        let raw: ServerToml =
            value.clone().try_into().map_err(|e: toml::de::Error| bad(&key, e.message().trim().replace('\n', " ")))?;
        out.insert(server.clone(), server_config(server, raw, base, &key)?);
    }
    Ok(out)
}

fn server_config(name: ServerName, raw: ServerToml, base: &Path, key: &str) -> Result<ServerConfig, ConfigError> {
    let transport = match (raw.command, raw.url) {
        (Some(_), Some(_)) => return Err(bad(key, "give `command` (stdio) or `url` (http), not both")),
        (None, None) => return Err(bad(key, "`command` (stdio) or `url` (http) is required")),
        (Some(command), None) => {
            if !raw.headers.is_empty() {
                return Err(bad(format!("{key}.headers"), "headers are for `url` servers"));
            }
            if command.trim().is_empty() {
                return Err(bad(format!("{key}.command"), "is empty"));
            }
            let command = if command.contains('/') { base.join(&command).display().to_string() } else { command };
            let mut env = Vec::new();
            for (k, v) in &raw.env {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    return Err(bad(format!("{key}.env"), format!("`{}` is not a variable name", k.escape_debug())));
                }
                let value = EnvValue::parse(v);
                if let EnvValue::FromEnv(var) = &value
                    && var.is_empty()
                {
                    return Err(bad(format!("{key}.env.{k}"), "`env:` names no variable"));
                }
                env.push((k.clone(), value));
            }
            let read = raw.read.iter().map(|p| base.join(p)).collect();
            let mut net = Vec::new();
            for host in &raw.net {
                let pattern =
                    ResourcePattern::parse(&format!("net:{host}")).map_err(|m| bad(format!("{key}.net"), m))?;
                net.push(pattern);
            }
            Transport::Stdio(Stdio { command, args: raw.args, env, read, net })
        }
        (None, Some(url)) => {
            if !raw.args.is_empty() || !raw.env.is_empty() || !raw.read.is_empty() || !raw.net.is_empty() {
                return Err(bad(key, "`args`, `env`, `read` and `net` are for `command` servers"));
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(
                    format!("{key}.url"),
                    format!("`{}` is not an http:// or https:// URL", url.escape_debug()),
                ));
            }
            let mut headers = Vec::new();
            for (h, v) in &raw.headers {
                match EnvValue::parse(v) {
                    EnvValue::FromEnv(var) if !var.is_empty() => headers.push((h.clone(), var)),
                    _ => {
                        return Err(bad(
                            format!("{key}.headers.{h}"),
                            "values must be \"env:VAR\" (header values are read from the environment, never written here)",
                        ));
                    }
                }
            }
            Transport::Http(Http { url, headers })
        }
    };
    let timeout = match raw.timeout_s {
        None => DEFAULT_TIMEOUT,
        Some(s) if (1..=MAX_TIMEOUT_S).contains(&s) => Duration::from_secs(s),
        Some(_) => return Err(bad(format!("{key}.timeout_s"), format!("must be between 1 and {MAX_TIMEOUT_S}"))),
    };
    let idle = match raw.idle_s {
        None => DEFAULT_IDLE,
        Some(0) => return Err(bad(format!("{key}.idle_s"), "must be at least 1")),
        Some(s) => Duration::from_secs(s),
    };
    let scope = match raw.scope.as_deref() {
        None | Some("workspace") => Scope::Workspace,
        Some("process") => Scope::Process,
        Some(other) => {
            return Err(bad(
                format!("{key}.scope"),
                format!("unknown scope `{}` (expected workspace or process)", other.escape_debug()),
            ));
        }
    };
    Ok(ServerConfig { name, transport, timeout, idle, scope })
}
