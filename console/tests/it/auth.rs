//! Issue 17, defect 9: the token the page can carry, the bearer scheme's
//! case, and the bounds on slow and piled-up connections.

use std::time::Duration;

use libos_console::{Access, Limits, TokenError};
use libos_kernel::Kernel;
use pretty_assertions::assert_eq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Server, TOKEN};

/// Longer than any bound under test: a read still waiting then has failed.
const PATIENCE: Duration = Duration::from_secs(30);

/// A server on an in-memory store within `limits`; its address.
async fn serve(limits: Limits) -> String {
    let kernel = Kernel::in_memory().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let access = Access::new(TOKEN, true).unwrap();
    tokio::spawn(libos_console::serve_with(listener, kernel, access, limits, std::future::pending()));
    addr
}

/// Everything the server sends until it closes the connection.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("the server kept the connection open")
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn status(response: &str) -> &str {
    response.split_whitespace().nth(1).unwrap_or("none")
}

fn a_token_the_page_cannot_carry_is_refused_and_a_short_one_only_off_loopback() {
    let check = |token: &str, loopback| Access::new(token, loopback).map(|a| a.token);
    assert_eq!(check("abc.def", true), Err(TokenError::Character('.')));
    assert_eq!(check("tab\there-and-long-enough", true), Err(TokenError::Character('\t')));
    assert_eq!(check("   ", true), Err(TokenError::Empty));
    assert_eq!(check("short", false), Err(TokenError::TooShort(5)));
    assert_eq!(check("short", true), Ok("short".to_string()));
    assert_eq!(check("Abc-_0123456789xy", false), Ok("Abc-_0123456789xy".to_string()));
    let generated = Access::generate_token();
    assert_eq!(check(&generated, false), Ok(generated.clone()));
    assert_eq!(
        TokenError::Character('.').to_string(),
        "holds '.': a console token is letters, digits, `-` and `_` only (what the console page keeps)"
    );
}

async fn serving_with_a_token_the_page_cannot_carry_fails_at_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let access = Access { token: "abc.def".into(), loopback: true };
    let err =
        libos_console::serve(listener, Kernel::in_memory().unwrap(), access, std::future::pending()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "the console token holds '.': a console token is letters, digits, `-` and `_` only (what the console page keeps)"
    );
}

async fn the_bearer_scheme_is_accepted_in_any_case() {
    let s = Server::start().await;
    let pids: Vec<_> = (0..3).map(|i| s.spawn(&format!("goal {i}"))).collect();
    for (pid, scheme) in pids.iter().zip(["bearer", "BEARER", "Bearer"]) {
        let r = s
            .client
            .post(format!("{}/api/processes/{pid}/kill", s.base))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "scheme {scheme}");
    }
    let r = s
        .client
        .post(format!("{}/api/processes/1/kill", s.base))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let addr = serve(Limits { header_timeout: Duration::from_millis(300), ..Limits::default() }).await;
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /api/processes HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ").await.unwrap();
    // Closed by the server, with nothing or a 408 said.
    let said = read_all(&mut slow).await;
    assert!(said.is_empty() || status(&said) == "408", "{said}");
    // An idle keep-alive connection is bounded the same way.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /api/audit/head HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut first = vec![0u8; 1024];
    let n = idle.read(&mut first).await.unwrap();
    assert_eq!(status(&String::from_utf8_lossy(&first[..n])), "200");
    read_all(&mut idle).await;
}

async fn connections_past_the_bound_are_answered_busy_and_those_held_are_still_served() {
    let addr = serve(Limits { header_timeout: Duration::from_secs(60), max_connections: 2 }).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /api/audit/head HTTP/1.1\r\nhost: 127.0.0.1\r\n").await.unwrap();
        held.push(c);
    }
    let mut third = TcpStream::connect(&addr).await.unwrap();
    third.write_all(b"GET /api/audit/head HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await.unwrap();
    let busy = read_all(&mut third).await;
    assert_eq!(status(&busy), "503", "{busy}");
    let body: serde_json::Value = serde_json::from_str(busy.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "busy");
    for mut c in held {
        c.write_all(b"connection: close\r\n\r\n").await.unwrap();
        assert_eq!(status(&read_all(&mut c).await), "200");
    }
}

libos_kernel::tests!(sync:
    a_token_the_page_cannot_carry_is_refused_and_a_short_one_only_off_loopback,
);

libos_kernel::tests!(async:
    serving_with_a_token_the_page_cannot_carry_fails_at_once,
    the_bearer_scheme_is_accepted_in_any_case,
    a_client_that_never_finishes_its_request_head_is_disconnected,
    connections_past_the_bound_are_answered_busy_and_those_held_are_still_served,
);
