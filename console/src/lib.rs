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

mod api;
pub mod error;
mod events;
mod page;
mod preview;
mod timeline;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use libos_kernel::Kernel;

pub use error::ApiError;

/// Who may do what.
#[derive(Debug, Clone)]
pub struct Access {
    /// The bearer token mutations (and, off loopback, reads) need.
    pub token: String,
    /// The server listens on a loopback address only.
    pub loopback: bool,
}

impl Access {
    /// A fresh random token (128 bits, hex).
    pub fn generate_token() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

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
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    kernel: Kernel,
    access: Access,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = router(kernel, access, stopped);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
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

/// The host part of a `Host` header (without the port).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn guard(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if s.access.loopback {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        if !matches!(host_name(host), "localhost" | "127.0.0.1" | "::1") {
            return ApiError::forbidden_host(host).into_response();
        }
    }
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    // The console page itself carries no data: it asks for the token.
    let needs_token = !reads || (!s.access.loopback && request.uri().path() != "/");
    if needs_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(given.trim().as_bytes(), s.access.token.as_bytes()) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}
