//! Starting one connection to a server: a sandboxed program spoken to over
//! its pipes, or a streamable-HTTP endpoint, and the MCP handshake, all
//! within [`start_timeout`]: the server's timeout, but never less than
//! [`MIN_START`] (an interpreter that imports an SDK on a loaded machine
//! takes seconds before it can answer, however quick its tools are).

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use libos_core::caps::{Resource, ResourcePattern};
use libos_sandbox::{End, Interactive, NetGate, Network, Reach, Sandbox, Spawned, Use};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};

use crate::config::{EnvValue, ServerConfig, Transport};
use crate::confine;

/// The least time a start and handshake are given.
pub const MIN_START: Duration = Duration::from_secs(30);

/// How long starting `config`'s server may take.
pub fn start_timeout(config: &ServerConfig) -> Duration {
    config.timeout.max(MIN_START)
}

/// Reads libos's environment (injectable for tests).
pub type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The client side of one connection: it hears `tools/list_changed`.
#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) on_tools_changed: Arc<dyn Fn() + Send + Sync>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        (self.on_tools_changed)();
    }
}

/// A live connection: the MCP session and, for stdio, the program.
pub(crate) struct Live {
    pub(crate) service: RunningService<RoleClient, Handler>,
    pub(crate) child: Option<Spawned>,
}

/// What starting needs besides the server's configuration.
pub(crate) struct Start<'a> {
    pub(crate) config: &'a ServerConfig,
    pub(crate) workspace: &'a Path,
    pub(crate) sandbox: &'a Sandbox,
    pub(crate) protected: &'a [PathBuf],
    pub(crate) env: &'a EnvFn,
}

/// How a program that is gone ended, with its last word on standard error.
pub(crate) fn death_notice(child: &Spawned, wait: Duration) -> String {
    let end = match child.wait_timeout(wait) {
        Some(End::Exited(code)) if code > 128 => format!("killed by signal {}", code - 128),
        Some(End::Exited(code)) => format!("exit status {code}"),
        Some(End::Signalled(sig)) => format!("killed by signal {sig}"),
        Some(End::NotRun(reason)) => return reason,
        Some(End::TimedOut | End::Cancelled) => "stopped".to_string(),
        None => "still running, not answering".to_string(),
    };
    match child.last_stderr_line() {
        Some(line) if line.starts_with(libos_sandbox::launch::MESSAGE_PREFIX) => {
            line.trim_start_matches(libos_sandbox::launch::MESSAGE_PREFIX).to_string()
        }
        Some(line) => format!("{end}; its last stderr line: {}", crate::one_line(&line)),
        None => format!("{end}; nothing on stderr"),
    }
}

/// A stdio server's own network grants (`[mcp.NAME] net`): a destination
/// one of them matches is allowed (the most specific pattern decides
/// nothing here: they are all allows); loopback, private and link-local
/// addresses only through a pattern naming the host exactly.
#[derive(Debug)]
struct ServerNet {
    server: String,
    allowed: Vec<ResourcePattern>,
}

impl NetGate for ServerNet {
    fn decide(&self, host: &str, port: u16, _use: Use) -> Result<Reach, String> {
        let host = libos_core::caps::net::host(host)?;
        let resource = Resource::net(&host, port);
        let matching: Vec<&ResourcePattern> = self.allowed.iter().filter(|p| p.matches(&resource)).collect();
        if matching.is_empty() {
            return Err(format!("mcp.{}.net does not name {host}:{port}", self.server));
        }
        let exact = matching.iter().any(|p| libos_core::caps::net::is_exact(&p.name));
        Ok(if exact { Reach::Any } else { Reach::Public })
    }
}

/// Starts a connection and completes the handshake.
pub(crate) async fn start(s: Start<'_>, handler: Handler) -> Result<Live, String> {
    match &s.config.transport {
        Transport::Stdio(stdio) => {
            let path = (s.env)("PATH").map(OsString::from);
            let program = confine::resolve(&stdio.command, path.as_deref())?;
            let derived = confine::derived_roots(&program, &stdio.args, path.as_deref(), s.workspace);
            let policy = confine::policy(s.workspace, s.protected.to_vec(), path.as_deref(), &derived, &stdio.read);
            let mut env = vec![
                ("PATH".to_string(), path.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()),
                ("HOME".to_string(), s.workspace.display().to_string()),
            ];
            for (key, value) in &stdio.env {
                let value = match value {
                    EnvValue::Literal(v) => v.clone(),
                    EnvValue::FromEnv(var) => (s.env)(var).ok_or_else(|| {
                        format!("environment variable {var} (for mcp.{}.env.{key}) is not set", s.config.name)
                    })?,
                };
                env.retain(|(k, _)| k != key);
                env.push((key.clone(), value));
            }
            let mut argv = vec![program.display().to_string()];
            argv.extend(stdio.args.iter().cloned());
            let sandbox = s.sandbox.clone();
            let cwd = s.workspace.to_path_buf();
            let mut policy = policy;
            // The operator's `net` grants the server itself a way out: the
            // sandbox's proxy, deciding each destination against them.
            let gate: Option<Arc<dyn NetGate>> = (!stdio.net.is_empty()).then(|| {
                policy.network = Network::Proxy;
                Arc::new(ServerNet { server: s.config.name.to_string(), allowed: stdio.net.clone() })
                    as Arc<dyn NetGate>
            });
            let spawned = tokio::task::spawn_blocking(move || {
                sandbox.spawn(&Interactive {
                    argv: &argv,
                    cwd: &cwd,
                    env: &env,
                    policy: &policy,
                    deadline: None,
                    net: gate.as_ref(),
                })
            })
            .await
            .map_err(|e| format!("cannot start: {e}"))?
            .map_err(|e| e.to_string())?;
            let mut child = spawned;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err("its pipes were not set up".to_string());
            };
            let tx = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(stdin))
                .map_err(|e| format!("its standard input: {e}"))?;
            let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))
                .map_err(|e| format!("its standard output: {e}"))?;
            match tokio::time::timeout(start_timeout(s.config), handler.serve((rx, tx))).await {
                Ok(Ok(service)) => Ok(Live { service, child: Some(child) }),
                Ok(Err(e)) => {
                    let notice = death_notice(&child, Duration::from_millis(500));
                    Err(format!("the MCP handshake failed ({}): {notice}", crate::one_line(&e.to_string())))
                }
                Err(_) => Err(format!(
                    "it did not complete the MCP handshake within {} s: {}",
                    start_timeout(s.config).as_secs(),
                    death_notice(&child, Duration::ZERO)
                )),
            }
        }
        Transport::Http(http) => {
            let mut headers = HashMap::new();
            for (name, var) in &http.headers {
                let value = (s.env)(var).ok_or_else(|| {
                    format!("environment variable {var} (for mcp.{}.headers.{name}) is not set", s.config.name)
                })?;
                let name = http::HeaderName::try_from(name.as_str())
                    .map_err(|_| format!("`{}` is not a header name", name.escape_debug()))?;
                let mut value = http::HeaderValue::try_from(value)
                    .map_err(|_| format!("the value of header {name} is not a valid header value"))?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
            let config = StreamableHttpClientTransportConfig::with_uri(http.url.as_str()).custom_headers(headers);
            let transport = StreamableHttpClientTransport::from_config(config);
            match tokio::time::timeout(start_timeout(s.config), handler.serve(transport)).await {
                Ok(Ok(service)) => Ok(Live { service, child: None }),
                Ok(Err(e)) => {
                    Err(format!("the MCP handshake with {} failed: {}", http.url, crate::one_line(&e.to_string())))
                }
                Err(_) => Err(format!(
                    "{} did not complete the MCP handshake within {} s",
                    http.url,
                    start_timeout(s.config).as_secs()
                )),
            }
        }
    }
}
