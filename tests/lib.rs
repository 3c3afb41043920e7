//! Test support shared by libos's test suites: a mock OpenAI-compatible
//! server on 127.0.0.1:0 that plays a queue of canned replies and records
//! every request. It speaks just enough HTTP/1.1 (one request per
//! connection) to also send what a real server should never send: truncated
//! bodies, hangs and resets. And [`llama`]: a real llama.cpp server with
//! a real small model, installed from PyPI into a cached virtual environment.

// Test fixture code: a failure to bind or a poisoned lock is a broken test, so it panics.
#![allow(clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub mod llama;

/// One canned reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status, extra headers and a body.
    Http {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: String,
        /// Wait this long before answering.
        delay: Duration,
    },
    /// Headers promising more body than is sent, then close.
    Truncated,
    /// Close the connection without answering.
    Reset,
    /// Exactly these bytes, then close (a response of any shape).
    Raw(Vec<u8>),
}

impl Reply {
    /// 200 with a JSON body.
    pub fn ok(body: serde_json::Value) -> Reply {
        Reply::Http { status: 200, headers: Vec::new(), body: body.to_string(), delay: Duration::ZERO }
    }

    /// A status with a raw body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Http { status, headers: Vec::new(), body: body.to_string(), delay: Duration::ZERO }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Delays the answer.
    pub fn delayed(mut self, d: Duration) -> Reply {
        if let Reply::Http { delay, .. } = &mut self {
            *delay = d;
        }
        self
    }

    /// A chat completion choosing one native tool call.
    pub fn tool_call(name: &str, args: serde_json::Value) -> Reply {
        Reply::ok(serde_json::json!({
            "model": "mock-1",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{"id": "call_abc", "type": "function",
                                "function": {"name": name, "arguments": args.to_string()}}]
            }}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }))
    }

    /// A chat completion with text content only.
    pub fn text(content: &str) -> Reply {
        Reply::ok(serde_json::json!({
            "model": "mock-1",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 90, "completion_tokens": 10, "total_tokens": 100}
        }))
    }
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request line, e.g. `POST /v1/chat/completions HTTP/1.1`.
    pub line: String,
    /// Header lines, lowercased names.
    pub headers: Vec<(String, String)>,
    /// Body as JSON (Null if not JSON).
    pub body: serde_json::Value,
}

#[derive(Default)]
struct State {
    replies: VecDeque<Reply>,
    fallback: Option<Reply>,
    requests: Vec<Request>,
    /// The answer to `GET /props` (llama.cpp's): none is a 404.
    props: Option<serde_json::Value>,
}

/// The mock server. Dropping it stops accepting.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    /// Starts a server that answers with `replies` in order, then with 500s.
    pub async fn start(replies: Vec<Reply>) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State { replies: replies.into(), ..State::default() }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, st.clone()));
            }
        });
        MockServer { addr, state, task }
    }

    /// Once the queue is empty, answer every request with `reply`.
    pub fn always(&self, reply: Reply) {
        self.state.lock().expect("mock state").fallback = Some(reply);
    }

    /// Answers `GET /props` as llama.cpp's server does, with a slot of
    /// `n_ctx` tokens (otherwise it is a 404, as on other servers). Probes
    /// are neither queued replies nor recorded requests.
    pub fn llama_props(&self, n_ctx: u64) {
        self.state.lock().expect("mock state").props =
            Some(serde_json::json!({"default_generation_settings": {"n_ctx": n_ctx}, "total_slots": 1}));
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("mock state").requests.clone()
    }
}

async fn serve(mut stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())).collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < header_end + len {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = serde_json::from_slice(&buf[header_end..header_end + len]).unwrap_or(serde_json::Value::Null);
    let reply = {
        let mut st = state.lock().expect("mock state");
        if line.starts_with("GET /props ") {
            match st.props.clone() {
                Some(v) => Reply::ok(v),
                None => Reply::status(404, r#"{"error": {"message": "not found"}}"#),
            }
        } else {
            st.requests.push(Request { line, headers, body });
            st.replies
                .pop_front()
                .or_else(|| st.fallback.clone())
                .unwrap_or_else(|| Reply::status(500, "no more replies"))
        }
    };
    answer(stream, reply).await;
}

async fn answer(mut stream: tokio::net::TcpStream, reply: Reply) {
    match reply {
        Reply::Http { status, headers, body, delay } => {
            tokio::time::sleep(delay).await;
            let mut out = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            let _ = stream.write_all(out.as_bytes()).await;
        }
        Reply::Truncated => {
            let out = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\nconnection: close\r\n\r\n{\"choices\": [";
            let _ = stream.write_all(out.as_bytes()).await;
        }
        Reply::Reset => {}
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
        }
    }
    let _ = stream.shutdown().await;
}
