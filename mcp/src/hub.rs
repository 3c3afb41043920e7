//! The hub: every configured server's connections, started on demand,
//! shared, restarted and stopped.
//!
//! A connection is kept per (server, workspace), or per (server, workspace,
//! process) for servers with `scope = "process"`; one hub serves one store
//! (the scheduler or CLI command that owns it), so a store is part of the key
//! by construction. A call:
//! 1. finds the server's slot and, under the slot's lock, its live
//!    connection, or starts one (within the server's timeout; refused while
//!    a backoff after repeated failures lasts);
//! 2. sends `tools/call` outside any lock (calls to one server run
//!    concurrently), waiting at most the server's timeout, or until the
//!    caller's cancel future completes (the request is then cancelled
//!    on the wire);
//! 3. on success, marks the slot healthy; on a transport failure (the
//!    program died), reports its exit and last stderr line and drops the
//!    connection; on a timeout, drops (kills) it too, so the next call
//!    starts afresh. Consecutive failures push the next start back
//!    (0, 1, 2, 4 ... 60 s).
//!
//! Tool lists are cached per server (not per connection: one server's
//! tools are the same whatever its workspace), invalidated when any of its
//! connections says `notifications/tools/list_changed`. A connection
//! unused for the server's `idle` time is stopped. Nothing here blocks a
//! thread: the sandbox's waits run on the blocking pool.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use libos_sandbox::Sandbox;
use rmcp::ServiceError;
use rmcp::model::CallToolRequestParams;
use serde_json::{Map, Value};

use crate::config::{Scope, ServerConfig, ServerName};
use crate::connect::{self, EnvFn, Handler, Live, Start};
use crate::output::CallOutput;
use crate::tool::ToolInfo;

/// Longest wait before a server that keeps failing is started again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a call or a listing failed. Every message names the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    /// No `[mcp.NAME]` of that name.
    #[error("no MCP server `{0}` is configured (add [mcp.{0}] to libos.toml)")]
    UnknownServer(String),
    /// The server could not be started or reached.
    #[error("mcp server `{server}` could not be started: {reason}")]
    Start {
        /// The server.
        server: ServerName,
        /// Why.
        reason: String,
    },
    /// The server failed recently and is not started again yet.
    #[error("mcp server `{server}` is not started again for {wait_s} s after {failures} failures; the last: {last}")]
    Backoff {
        /// The server.
        server: ServerName,
        /// Seconds left.
        wait_s: u64,
        /// Consecutive failures.
        failures: u32,
        /// The last failure.
        last: String,
    },
    /// The server did not answer in time; it was stopped (the next call starts it again).
    #[error(
        "mcp server `{server}` did not answer `{tool}` within {timeout_s} s; it was stopped and starts again on the next call"
    )]
    Timeout {
        /// The server.
        server: ServerName,
        /// The tool called.
        tool: String,
        /// Its timeout.
        timeout_s: u64,
    },
    /// The server went away during the call.
    #[error("mcp server `{server}` died during `{tool}`: {detail}")]
    Crashed {
        /// The server.
        server: ServerName,
        /// The tool called.
        tool: String,
        /// Its exit and last stderr line.
        detail: String,
    },
    /// The server answered with a protocol error (an unknown tool, bad arguments).
    #[error("mcp server `{server}` refused `{tool}`: {message}")]
    Refused {
        /// The server.
        server: ServerName,
        /// The tool called.
        tool: String,
        /// Its message.
        message: String,
    },
    /// The caller cancelled the call.
    #[error("the call of `{tool}` on mcp server `{server}` was cancelled")]
    Cancelled {
        /// The server.
        server: ServerName,
        /// The tool called.
        tool: String,
    },
}

/// Who is calling: the server, and the workspace (and process) the call is for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The server's name.
    pub server: &'a str,
    /// The caller's workspace (canonical): the server's working directory
    /// and the only tree it may write.
    pub workspace: &'a Path,
    /// The calling process (used for `scope = "process"` servers).
    pub pid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    server: ServerName,
    workspace: PathBuf,
    pid: Option<u64>,
}

/// A connection in use: the session, the program, and its use.
struct Conn {
    live: Live,
    generation: u64,
    in_flight: AtomicUsize,
    last_used: Mutex<Instant>,
}

impl Conn {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

#[derive(Default)]
struct SlotState {
    conn: Option<Arc<Conn>>,
    failures: u32,
    not_before: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
}

/// A server's tool list: bumped by each `list_changed`, and the list if
/// one was fetched since.
type Cached = (u64, Option<Arc<[ToolInfo]>>);

struct Inner {
    servers: BTreeMap<ServerName, ServerConfig>,
    sandbox: Sandbox,
    protected: Vec<PathBuf>,
    env: EnvFn,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    tools: Mutex<HashMap<ServerName, Cached>>,
    generations: AtomicU64,
}

/// The MCP servers of one store. Cheap to clone; every clone shares the
/// connections. Dropping the last clone stops every server.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("servers", &self.inner.servers.keys().collect::<Vec<_>>()).finish()
    }
}

/// What one server is doing, for `libos mcp list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    /// No connection is open.
    Stopped,
    /// This many connections are open.
    Running(usize),
    /// It failed; not started again for a while.
    Backoff {
        /// The last failure.
        last: String,
    },
}

impl Hub {
    /// A hub for `servers`, running stdio servers in `sandbox`, never
    /// letting them reach `protected`, reading `env:VAR` values from the
    /// process environment.
    pub fn new(servers: BTreeMap<ServerName, ServerConfig>, sandbox: Sandbox, protected: Vec<PathBuf>) -> Hub {
        Hub::with_env(servers, sandbox, protected, Arc::new(|k: &str| std::env::var(k).ok()))
    }

    /// Like [`Hub::new`], reading `env:VAR` values (and `PATH`) through `env`.
    pub fn with_env(
        servers: BTreeMap<ServerName, ServerConfig>,
        sandbox: Sandbox,
        protected: Vec<PathBuf>,
        env: EnvFn,
    ) -> Hub {
        // reqwest (for streamable HTTP) is built without a TLS provider of
        // its own; ring is the one the rest of libos uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Hub {
            inner: Arc::new(Inner {
                servers,
                sandbox,
                protected,
                env,
                slots: Mutex::new(HashMap::new()),
                tools: Mutex::new(HashMap::new()),
                generations: AtomicU64::new(0),
            }),
        }
    }

    /// A hub of the same servers, sandbox and environment with none of
    /// this one's connections or cached lists (a run lists tools through
    /// one and stops it, so listing never holds a server of its own).
    pub fn sibling(&self) -> Hub {
        let i = &self.inner;
        Hub::with_env(i.servers.clone(), i.sandbox.clone(), i.protected.clone(), i.env.clone())
    }

    /// The configured servers, by name.
    pub fn servers(&self) -> impl Iterator<Item = &ServerConfig> {
        self.inner.servers.values()
    }

    /// A server's configuration.
    pub fn server(&self, name: &str) -> Result<&ServerConfig, McpError> {
        self.inner
            .servers
            .values()
            .find(|c| c.name.as_str() == name)
            .ok_or_else(|| McpError::UnknownServer(name.to_string()))
    }

    /// What `server` is doing in this hub.
    pub async fn state(&self, server: &str) -> ServerState {
        let slots: Vec<Arc<Slot>> = {
            let map = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
            map.iter().filter(|(k, _)| k.server.as_str() == server).map(|(_, s)| s.clone()).collect()
        };
        let mut running = 0;
        let mut last = None;
        for slot in slots {
            let st = slot.state.lock().await;
            if st.conn.is_some() {
                running += 1;
            } else if st.not_before.is_some_and(|t| t > Instant::now()) {
                last = st.last_error.clone();
            }
        }
        match (running, last) {
            (0, Some(last)) => ServerState::Backoff { last },
            (0, None) => ServerState::Stopped,
            (n, _) => ServerState::Running(n),
        }
    }

    /// The tools of `target.server` (cached; fetched through a connection
    /// for `target` when not).
    pub async fn tools(&self, target: Target<'_>) -> Result<Arc<[ToolInfo]>, McpError> {
        let config = self.server(target.server)?.clone();
        let epoch = {
            let cache = self.inner.tools.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&config.name) {
                Some((_, Some(tools))) => return Ok(tools.clone()),
                Some((epoch, None)) => *epoch,
                None => 0,
            }
        };
        let (slot, conn) = self.connection(&config, target).await?;
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        let listed = tokio::time::timeout(config.timeout, conn.live.service.peer().list_all_tools()).await;
        conn.in_flight.fetch_sub(1, Ordering::SeqCst);
        conn.touch();
        let tools = match listed {
            Ok(Ok(tools)) => tools,
            Ok(Err(e)) => return Err(self.failed(&slot, &conn, &config, "tools/list", e).await),
            Err(_) => {
                self.drop_conn(&slot, conn.generation, "did not answer tools/list in time".to_string()).await;
                return Err(McpError::Timeout {
                    server: config.name.clone(),
                    tool: "tools/list".to_string(),
                    timeout_s: config.timeout.as_secs(),
                });
            }
        };
        let tools: Arc<[ToolInfo]> = tools.into_iter().map(ToolInfo::from_wire).collect();
        let mut cache = self.inner.tools.lock().unwrap_or_else(|e| e.into_inner());
        // A list_changed that came while listing makes this list stale.
        let current = cache.get(&config.name).map_or(0, |(e, _)| *e);
        if current == epoch {
            cache.insert(config.name.clone(), (epoch, Some(tools.clone())));
        }
        Ok(tools)
    }

    /// Calls `tool` of `target.server` with `args`, for at most the
    /// server's timeout or until `cancel` completes.
    pub async fn call(
        &self,
        target: Target<'_>,
        tool: &str,
        args: Map<String, Value>,
        cancel: impl Future<Output = ()>,
    ) -> Result<CallOutput, McpError> {
        let config = self.server(target.server)?.clone();
        let (slot, conn) = self.connection(&config, target).await?;
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        let peer = conn.live.service.peer().clone();
        let outcome = tokio::select! {
            r = tokio::time::timeout(config.timeout, peer.call_tool(params)) => Some(r),
            () = cancel => None,
        };
        conn.in_flight.fetch_sub(1, Ordering::SeqCst);
        conn.touch();
        match outcome {
            None => Err(McpError::Cancelled { server: config.name.clone(), tool: tool.to_string() }),
            Some(Ok(Ok(result))) => {
                let mut st = slot.state.lock().await;
                st.failures = 0;
                st.not_before = None;
                Ok(CallOutput::from_wire(result))
            }
            Some(Ok(Err(e))) => Err(self.failed(&slot, &conn, &config, tool, e).await),
            Some(Err(_)) => {
                self.drop_conn(&slot, conn.generation, format!("did not answer `{tool}` in time")).await;
                Err(McpError::Timeout {
                    server: config.name.clone(),
                    tool: tool.to_string(),
                    timeout_s: config.timeout.as_secs(),
                })
            }
        }
    }

    /// Stops every connection of every server.
    pub async fn stop_all(&self) {
        let slots: Vec<Arc<Slot>> = {
            let mut map = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
            map.drain().map(|(_, s)| s).collect()
        };
        for slot in slots {
            let conn = slot.state.lock().await.conn.take();
            stop(conn).await;
        }
    }

    /// A failed request: a protocol error leaves the server running; any
    /// other failure means the connection is gone.
    async fn failed(
        &self,
        slot: &Arc<Slot>,
        conn: &Arc<Conn>,
        config: &ServerConfig,
        tool: &str,
        e: ServiceError,
    ) -> McpError {
        if let ServiceError::McpError(data) = &e {
            return McpError::Refused {
                server: config.name.clone(),
                tool: tool.to_string(),
                message: crate::one_line(&data.message),
            };
        }
        let why = crate::one_line(&e.to_string()).to_lowercase();
        let detail = match conn.live.child.is_some() {
            true => {
                // The wait for its exit runs off the async threads.
                let held = conn.clone();
                let notice = tokio::task::spawn_blocking(move || {
                    held.live.child.as_ref().map(|c| connect::death_notice(c, Duration::from_secs(1)))
                })
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
                format!("{notice} ({why})")
            }
            false => why,
        };
        self.drop_conn(slot, conn.generation, detail.clone()).await;
        McpError::Crashed { server: config.name.clone(), tool: tool.to_string(), detail }
    }

    /// Drops the connection of `generation` (if it is still the slot's),
    /// counting a failure.
    async fn drop_conn(&self, slot: &Arc<Slot>, generation: u64, why: String) {
        let taken = {
            let mut st = slot.state.lock().await;
            if st.conn.as_ref().is_none_or(|c| c.generation != generation) {
                return;
            }
            st.failures = st.failures.saturating_add(1);
            st.not_before = Some(Instant::now() + backoff(st.failures));
            st.last_error = Some(why);
            st.conn.take()
        };
        stop(taken).await;
    }

    fn slot(&self, key: Key) -> Arc<Slot> {
        let mut map = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    }

    /// The live connection for `target`, started if there is none.
    async fn connection(&self, config: &ServerConfig, target: Target<'_>) -> Result<(Arc<Slot>, Arc<Conn>), McpError> {
        let key = Key {
            server: config.name.clone(),
            workspace: target.workspace.to_path_buf(),
            pid: (config.scope == Scope::Process).then_some(target.pid),
        };
        let slot = self.slot(key);
        let mut st = slot.state.lock().await;
        if let Some(conn) = &st.conn {
            if !conn.live.service.is_closed() {
                return Ok((slot.clone(), conn.clone()));
            }
            let gone = st.conn.take();
            stop(gone).await;
        }
        if let Some(at) = st.not_before
            && at > Instant::now()
        {
            return Err(McpError::Backoff {
                server: config.name.clone(),
                wait_s: at.saturating_duration_since(Instant::now()).as_secs().max(1),
                failures: st.failures,
                last: st.last_error.clone().unwrap_or_default(),
            });
        }
        let weak = Arc::downgrade(&self.inner);
        let name = config.name.clone();
        let handler = Handler {
            on_tools_changed: Arc::new(move || {
                if let Some(inner) = weak.upgrade() {
                    let mut cache = inner.tools.lock().unwrap_or_else(|e| e.into_inner());
                    let entry = cache.entry(name.clone()).or_insert((0, None));
                    *entry = (entry.0 + 1, None);
                }
            }),
        };
        let start = Start {
            config,
            workspace: target.workspace,
            sandbox: &self.inner.sandbox,
            protected: &self.inner.protected,
            env: &self.inner.env,
        };
        let live = match connect::start(start, handler).await {
            Ok(live) => live,
            Err(reason) => {
                st.failures = st.failures.saturating_add(1);
                st.not_before = Some(Instant::now() + backoff(st.failures));
                st.last_error = Some(reason.clone());
                return Err(McpError::Start { server: config.name.clone(), reason });
            }
        };
        let conn = Arc::new(Conn {
            live,
            generation: self.inner.generations.fetch_add(1, Ordering::SeqCst),
            in_flight: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
        });
        st.conn = Some(conn.clone());
        drop(st);
        watch_idle(Arc::downgrade(&slot), conn.generation, config.idle);
        Ok((slot, conn))
    }
}

/// The wait before start number `failures + 1`: none after one failure,
/// then 1, 2, 4 ... seconds, at most [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(6)).min(MAX_BACKOFF),
    }
}

/// Stops the connection of `generation` once it has been unused for `idle`.
fn watch_idle(slot: Weak<Slot>, generation: u64, idle: Duration) {
    tokio::spawn(async move {
        let mut wait = idle;
        loop {
            tokio::time::sleep(wait).await;
            let Some(slot) = slot.upgrade() else { return };
            let mut st = slot.state.lock().await;
            let Some(conn) = st.conn.as_ref().filter(|c| c.generation == generation) else { return };
            let unused = conn.last_used.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
            if conn.in_flight.load(Ordering::SeqCst) == 0 && unused >= idle {
                let conn = st.conn.take();
                drop(st);
                stop(conn).await;
                return;
            }
            wait = idle.saturating_sub(unused).max(Duration::from_millis(100));
        }
    });
}

/// Closes a connection and kills its program, off the async threads (the
/// sandbox waits for its launcher to go, briefly).
async fn stop(conn: Option<Arc<Conn>>) {
    let Some(conn) = conn else { return };
    conn.live.service.cancellation_token().cancel();
    // Killed now, even if a call still holds the connection.
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(child) = &conn.live.child {
            child.kill();
        }
        drop(conn);
    })
    .await;
}
