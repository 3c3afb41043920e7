//! libos's HTTP face, served by `libos serve`: a JSON API over a store
//! (everything the CLI reads, every operator action), a live event stream
//! (Server-Sent Events) and a single-page console embedded in the binary.
//!
//! Security model:
//! - Every mutating request (any method but GET and HEAD) needs the
//!   server's token in an `Authorization: Bearer` header. A header, never a
//!   cookie: a page on another site cannot make the browser send it.
//! - Bound to a loopback address, reads are open to local programs, and the
//!   `Host` header must name the loopback (so a web page cannot reach the
//!   server through DNS rebinding). Bound to any other address, reads need
//!   the token too.
//! - Actions are taken as the operator, exactly as the CLI takes them.
//! - A token is letters, digits, `-` and `_` (what the page carries), and
//!   at least 16 characters off loopback; the bearer scheme's case does not
//!   matter.
//! - A client has 10 s to send a request head, and at most 256 connections
//!   are served at once (see [`Limits`]).

mod api;
mod auth;
pub mod error;
mod events;
mod page;
mod preview;
mod serve;
mod timeline;
pub mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use axum::middleware;
use axum::response::Html;
use axum::routing::{get, post};
use libos_kernel::Kernel;

pub use auth::{Access, MIN_REMOTE_TOKEN, TokenError};
pub use error::ApiError;
pub use events::record_events;
pub use serve::Limits;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    kernel: Kernel,
    access: Arc<Access>,
    /// Counts commits through this process's kernel handle: an event
    /// stream waits on it (and polls for other processes' commits).
    commits: tokio::sync::watch::Receiver<u64>,
    /// True once the server is shutting down: event streams end.
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The API and console routes over `kernel`. `shutdown` ends the event
/// streams when it turns true (a graceful shutdown waits for them).
pub fn router(kernel: Kernel, access: Access, shutdown: tokio::sync::watch::Receiver<bool>) -> Router {
    let (count, commits) = tokio::sync::watch::channel(0u64);
    kernel.on_commit(move || count.send_modify(|n| *n = n.wrapping_add(1)));
    let shared = Shared { kernel, access: Arc::new(access), commits, shutdown };
    Router::new()
        .route("/", get(console))
        .route("/api/processes", get(api::processes))
        .route("/api/processes/{pid}", get(api::process))
        .route("/api/processes/{pid}/transcript", get(api::transcript))
        .route("/api/processes/{pid}/timeline", get(api::timeline))
        .route("/api/processes/{pid}/caps", get(api::caps))
        .route("/api/processes/{pid}/inbox", get(api::inbox))
        .route("/api/processes/{pid}/memory", get(api::memory))
        .route("/api/processes/{pid}/kill", post(api::kill))
        .route("/api/processes/{pid}/pause", post(api::pause))
        .route("/api/processes/{pid}/resume", post(api::resume))
        .route("/api/processes/{pid}/messages", post(api::send))
        .route("/api/memory/{oid}", get(api::object))
        .route("/api/requests", get(api::requests))
        .route("/api/requests/{id}", get(api::request))
        .route("/api/requests/{id}/approve", post(api::approve))
        .route("/api/requests/{id}/deny", post(api::deny))
        .route("/api/requests/{id}/answer", post(api::answer))
        .route("/api/audit", get(api::audit))
        .route("/api/audit/verify", get(api::verify))
        .route("/api/audit/head", get(api::head))
        .route("/api/events", get(events::events))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), auth::guard))
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` resolves, within the
/// default [`Limits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    kernel: Kernel,
    access: Access,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, kernel, access, Limits::default(), shutdown).await
}

/// [`serve`] within `limits`. Refuses (as `InvalidInput`) access whose
/// token [`Access::check`] refuses.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    kernel: Kernel,
    access: Access,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    access
        .check()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("the console token {e}")))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = router(kernel, access, stopped);
    serve::run(listener, app, limits, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await
}

async fn console() -> Html<&'static str> {
    Html(page::console())
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {method} {}", uri.path()))
}
