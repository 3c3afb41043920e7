//! libos's MCP client: the servers an operator declares in `libos.toml`
//! (`[mcp.NAME]`), started on demand (stdio servers as sandboxed programs,
//! confined by `libos-sandbox`; streamable-HTTP servers reached by URL),
//! their tools listed and called with bounded time and bounded results.
//! Built on the official Rust SDK, `rmcp`.
//!
//! This crate decides nothing about grants, audit or approval: the tool
//! registry's MCP entries check `mcp:SERVER/TOOL` before they call
//! [`Hub::call`], and record the call as an external effect. It never
//! panics on a server's behaviour and never blocks a caller past the
//! server's timeout.
//!
//! Modules, in reading order:
//! - [`config`]: the `[mcp.NAME]` tables, validated ([`ServerConfig`]).
//! - [`confine`]: what a stdio server may reach (its installation, derived
//!   from `command`; its workspace; no network).
//! - [`connect`]: starting one connection and its MCP handshake.
//! - [`hub`]: connections per (server, workspace), tool lists cached, calls
//!   with timeouts, restarts with backoff, idle stops ([`Hub`]).
//! - [`tool`]: a tool's descriptor ([`ToolInfo`]).
//! - [`output`]: a result as the model sees it, bounded ([`CallOutput`]).

pub mod config;
pub mod confine;
pub mod connect;
pub mod hub;
pub mod output;
pub mod tool;

pub use config::{ConfigError, EnvValue, Scope, ServerConfig, ServerName, Transport};
pub use connect::EnvFn;
pub use hub::{Hub, McpError, ServerState, Target};
pub use output::{CallOutput, MAX_RESULT_BYTES};
pub use tool::{Annotations, ToolInfo};

/// The separator between server and tool in the name a model sees
/// (`SERVER__TOOL`); server names never contain it.
pub const NAME_SEPARATOR: &str = "__";

/// `text` on one line: control characters (newlines included) as spaces,
/// at most 300 characters.
pub(crate) fn one_line(text: &str) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let flat = flat.trim();
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat.to_string(),
    }
}
