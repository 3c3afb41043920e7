//! The accept loop: HTTP/1.1 connections under two bounds that
//! `axum::serve` does not set.
//!
//! - A **header read timeout**: a connection that has not sent a whole
//!   request head within [`Limits::header_timeout`] (a slow client, or one
//!   holding the connection open) is closed. It also ends idle keep-alive
//!   connections, as hyper starts the timer whenever it waits for a head.
//! - A **connection bound**: at most [`Limits::max_connections`] are served
//!   at once (the live event streams among them); one more is answered
//!   `503` with a JSON error and closed, so a flood of connections costs
//!   the server a bounded number of tasks and descriptors.
//!
//! Shutdown is graceful: the listener stops, event streams end (the caller
//! flips `shutdown`), and open connections finish their requests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The bounds a server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request head.
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { header_timeout: Duration::from_secs(10), max_connections: 256 }
    }
}

/// Connections being turned away at once; past this they are dropped unanswered.
const MAX_REFUSING: usize = 64;
/// How long a refused connection is given to send its request before the 503.
const REFUSE_WAIT: Duration = Duration::from_secs(1);

/// What a refused connection is told.
const BUSY: &str = r#"{"error":{"code":"busy","message":"too many connections to this server: try again shortly"}}"#;

/// Serves `app` on `listener` within `limits` until `shutdown` resolves,
/// then waits for open connections to finish.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, a connection reset before it was
                // accepted: the listener itself is fine.
                Err(e) => {
                    tracing::debug!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Ok(slot) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(slot);
                });
            }
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Reads what the client sent (so closing does not reset the connection
/// under its answer), answers 503 and closes.
async fn refuse(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSE_WAIT, async {
        let mut seen = Vec::new();
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(4).any(|w| w == b"\r\n\r\n") || seen.len() > 16 * 1024 {
                break;
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(REFUSE_WAIT, async {
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n\
             content-length: {}\r\n\r\n{BUSY}",
            BUSY.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
