//! The network a sandboxed program with `net:` grants sees: one HTTP proxy.
//!
//! Such a program still runs in an empty network namespace, where only the
//! loopback is up and the launcher listens on `127.0.0.1:3128`; Landlock
//! lets it connect to that port and no other. The launcher hands the
//! listening socket to the scheduler over a one-shot Unix socket (with a
//! token), so the proxy runs here, in the scheduler, outside the sandbox:
//! it reads each request's head, asks the process's [`NetGate`] about the
//! destination, resolves the name itself, and connects only to addresses
//! the decision allows. `CONNECT host:port` opens a tunnel (needs `write`);
//! a plain `http://` request is forwarded once, with `Connection: close`
//! (`GET` and `HEAD` need `read`, other methods `write`). Everything else,
//! and every refusal, is an HTTP error the program sees, and each attempt
//! is kept for the tool result (and so the audit).
//!
//! Programs find the proxy through `http_proxy`, `https_proxy` and
//! `all_proxy`; a program that ignores them reaches nothing.

use std::collections::HashMap;
use std::io::{IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};

use crate::net::{NetGate, Reach, Use, resolve};

/// The port the proxy listens on inside the sandbox.
pub const PROXY_PORT: u16 = 3128;
/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// How long a program has to send a request's head, and a connection to open.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the launcher has to hand the listener over.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once, and attempts remembered, per run.
const MAX_CONNECTIONS: usize = 64;
const MAX_ATTEMPTS: usize = 100;

/// One connection a program asked the proxy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// `CONNECT`, `GET`, ...
    pub method: String,
    /// `host:port`, as the program wrote it (printable ASCII only).
    pub target: String,
    /// Whether it went through; the reason if not.
    pub outcome: Result<(), String>,
}

/// The Unix socket the launcher connects to, once, to hand the listener over.
#[derive(Debug)]
pub(crate) struct Handover {
    dir: PathBuf,
    listener: UnixListener,
    token: String,
}

impl Handover {
    pub(crate) fn new() -> Result<Handover, String> {
        let token = random_token()?;
        let name = random_token()?;
        let dir = std::env::temp_dir().join(format!("libos-proxy-{}-{}", std::process::id(), &name[..16]));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        let listener = UnixListener::bind(dir.join("s")).map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            format!("cannot listen in {}: {e}", dir.display())
        })?;
        Ok(Handover { dir, listener, token })
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.join("s")
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A running proxy for one sandboxed run.
#[derive(Debug)]
pub(crate) struct Proxy {
    stop: Arc<Stop>,
    acceptor: Option<JoinHandle<()>>,
    attempts: Arc<Mutex<Attempts>>,
}

#[derive(Debug, Default)]
struct Attempts {
    kept: Vec<Attempt>,
    more: usize,
}

impl Proxy {
    pub(crate) fn start(handover: Handover, gate: Arc<dyn NetGate>) -> Proxy {
        let stop = Arc::new(Stop::new());
        let attempts = Arc::new(Mutex::new(Attempts::default()));
        let (s, a) = (stop.clone(), attempts.clone());
        let acceptor = std::thread::spawn(move || {
            if let Some(listener) = take_listener(&handover, &s) {
                drop(handover);
                serve(listener, gate, &s, a);
            }
        });
        Proxy { stop, acceptor: Some(acceptor), attempts }
    }

    /// Stops accepting (connections already open end with the program's
    /// side) and returns what was attempted, with how many more were not kept.
    pub(crate) fn finish(mut self) -> (Vec<Attempt>, usize) {
        self.stop.set();
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        let attempts = self.attempts.lock().map(|a| (a.kept.clone(), a.more));
        attempts.unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.set();
    }
}

/// The proxy's stop: a flag, and an eventfd that wakes a waiting acceptor
/// at once (a run's end must not wait for a poll to time out).
#[derive(Debug)]
struct Stop {
    flag: AtomicBool,
    wake: Option<OwnedFd>,
}

impl Stop {
    fn new() -> Stop {
        let flags = rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK;
        Stop { flag: AtomicBool::new(false), wake: rustix::event::eventfd(0, flags).ok() }
    }

    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Some(fd) = &self.wake {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Waits until `fd` is readable; false once `stop` is set or `until` passed.
fn readable(fd: &impl std::os::fd::AsFd, stop: &Stop, until: Option<Instant>) -> bool {
    // Without an eventfd, the flag is looked at every 50 ms.
    let tick = Duration::from_millis(if stop.wake.is_some() { 60_000 } else { 50 });
    loop {
        let now = Instant::now();
        if stop.is_set() || until.is_some_and(|u| now >= u) {
            return false;
        }
        let wait = until.map_or(tick, |u| (u - now).min(tick));
        let timeout = Timespec { tv_sec: wait.as_secs() as i64, tv_nsec: i64::from(wait.subsec_nanos()) };
        let mut fds = vec![PollFd::new(fd, PollFlags::IN)];
        if let Some(w) = &stop.wake {
            fds.push(PollFd::new(w, PollFlags::IN));
        }
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) if fds[0].revents().contains(PollFlags::IN) && !stop.is_set() => return true,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

/// Receives the listening socket from the launcher (checking its token).
fn take_listener(handover: &Handover, stop: &Stop) -> Option<TcpListener> {
    let until = Instant::now() + HANDOVER_TIMEOUT;
    while readable(&handover.listener, stop, Some(until)) {
        let Ok((conn, _)) = handover.listener.accept() else { continue };
        let mut token = [0u8; 64];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let _ = conn.set_read_timeout(Some(HANDOVER_TIMEOUT));
        let Ok(got) = recvmsg(&conn, &mut [IoSliceMut::new(&mut token)], &mut control, RecvFlags::CMSG_CLOEXEC) else {
            continue;
        };
        let mut fds: Vec<OwnedFd> = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        if &token[..got.bytes] == handover.token().as_bytes() && fds.len() == 1 {
            return fds.pop().map(TcpListener::from);
        }
    }
    None
}

/// The sockets of the connections open now, so that stopping the proxy
/// closes them: a tunnel to a server that never speaks would otherwise keep
/// its thread waiting after the program is gone.
#[derive(Debug, Default)]
struct Live {
    next: AtomicUsize,
    sockets: Mutex<HashMap<usize, Vec<TcpStream>>>,
}

impl Live {
    fn add(&self, id: usize, socket: &TcpStream) {
        if let Ok(clone) = socket.try_clone() {
            self.sockets.lock().unwrap_or_else(|e| e.into_inner()).entry(id).or_default().push(clone);
        }
    }

    fn remove(&self, id: usize) {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    fn close_all(&self) {
        for socket in self.sockets.lock().unwrap_or_else(|e| e.into_inner()).drain().flat_map(|(_, s)| s) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

fn serve(listener: TcpListener, gate: Arc<dyn NetGate>, stop: &Stop, attempts: Arc<Mutex<Attempts>>) {
    let open = Arc::new(AtomicUsize::new(0));
    let live = Arc::new(Live::default());
    while readable(&listener, stop, None) {
        let Ok((client, _)) = listener.accept() else { continue };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let mut client = client;
            let _ = refuse(&mut client, 503, "too many connections open at once");
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let (gate, attempts, open, live) = (gate.clone(), attempts.clone(), open.clone(), live.clone());
        let id = live.next.fetch_add(1, Ordering::SeqCst);
        live.add(id, &client);
        std::thread::spawn(move || {
            let attempt = handle(client, gate.as_ref(), &|upstream| live.add(id, upstream));
            live.remove(id);
            if let Some(a) = attempt {
                let mut all = attempts.lock().unwrap_or_else(|e| e.into_inner());
                if all.kept.len() < MAX_ATTEMPTS {
                    all.kept.push(a);
                } else {
                    all.more += 1;
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    live.close_all();
}

/// A request's head as the program sent it.
struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    /// Bytes read past the head (the start of a body or of a tunnel).
    rest: Vec<u8>,
}

fn read_head(client: &mut TcpStream) -> Result<Head, String> {
    let _ = client.set_read_timeout(Some(HEAD_TIMEOUT));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err("the request head is too long".to_string());
        }
        match client.read(&mut chunk) {
            Ok(0) => return Err("the connection closed before a request".to_string()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err("no request came in time".to_string()),
        }
    };
    let _ = client.set_read_timeout(None);
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "the request head is not text".to_string())?;
    if !text.bytes().all(|b| b == b'\r' || b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err("the request head has control or non-ASCII characters".to_string());
    }
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut words = first.split(' ');
    let (Some(method), Some(target), Some(version), None) = (words.next(), words.next(), words.next(), words.next())
    else {
        return Err("the request line is malformed".to_string());
    };
    let lines: Vec<&str> = lines.collect();
    // A bare CR or LF would end a line for some servers and not for this
    // proxy: a header smuggled past it.
    if lines.iter().any(|l| l.contains(['\r', '\n'])) || first.contains(['\r', '\n']) {
        return Err("the request head has a bare CR or LF".to_string());
    }
    let headers = lines
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "a header is malformed".to_string())?;
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        rest: buf[end + 4..].to_vec(),
    })
}

/// Splits `host[:port]` (IPv6 in brackets) with a default port.
fn authority(text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(end) = text.strip_prefix('[').and_then(|t| t.find(']')) {
        let host = &text[..end + 2];
        (host, text[end + 2..].strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match (port, default_port) {
        (Some(p), _) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("`{text}` has a bad port"))?,
        (None, Some(d)) => d,
        (None, None) => return Err(format!("`{text}` names no port")),
    };
    if host.is_empty() {
        return Err(format!("`{text}` names no host"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn handle(mut client: TcpStream, gate: &dyn NetGate, track: &dyn Fn(&TcpStream)) -> Option<Attempt> {
    let head = match read_head(&mut client) {
        Ok(h) => h,
        Err(e) => {
            let _ = refuse(&mut client, 400, &e);
            return None;
        }
    };
    let mut attempt = Attempt { method: head.method.clone(), target: String::new(), outcome: Ok(()) };
    let result = forward(&mut client, gate, head, &mut attempt.target, track);
    if let Err((status, reason)) = result {
        let _ = refuse(&mut client, status, &reason);
        attempt.outcome = Err(reason);
    }
    Some(attempt)
}

/// Decides, connects and relays; the error is the status and reason the
/// program gets.
fn forward(
    client: &mut TcpStream,
    gate: &dyn NetGate,
    head: Head,
    target: &mut String,
    track: &dyn Fn(&TcpStream),
) -> Result<(), (u16, String)> {
    let tunnel = head.method == "CONNECT";
    let (authority_text, path) = if tunnel {
        (head.target.as_str(), "")
    } else if let Some(rest) = head.target.strip_prefix("http://") {
        match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        }
    } else {
        *target = head.target.chars().take(200).collect();
        return Err((400, "only CONNECT host:port and http:// requests go through the proxy".to_string()));
    };
    *target = authority_text.chars().take(200).collect();
    let (host, port) = authority(authority_text, if tunnel { None } else { Some(80) }).map_err(|e| (400, e))?;
    *target = format!("{host}:{port}");
    let use_ = match head.method.as_str() {
        "GET" | "HEAD" if !tunnel => Use::Read,
        _ => Use::Write,
    };
    let reach: Reach = gate.decide(&host, port, use_).map_err(|e| (403, e))?;
    let addrs = resolve(&host, port, reach).map_err(|e| (403, e))?;
    let mut last = String::new();
    let mut upstream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                upstream = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let mut upstream = upstream.ok_or_else(|| (502, format!("cannot connect to {host}:{port}: {last}")))?;
    track(&upstream);
    if tunnel {
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").map_err(|e| (502, e.to_string()))?;
        upstream.write_all(&head.rest).map_err(|e| (502, e.to_string()))?;
        relay(client, upstream, None);
        return Ok(());
    }
    // One request, then the connection closes: a second request on it
    // (to another host) would never have been decided.
    if head.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding")) {
        return Err((411, "send a Content-Length: chunked request bodies are not forwarded".to_string()));
    }
    let length = match head.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        Some((_, v)) => v.parse::<u64>().map_err(|_| (400, "the Content-Length is not a number".to_string()))?,
        None => 0,
    };
    // The server is asked for the host that was decided, whatever `Host`
    // the program wrote (another site at the same address is not granted).
    let mut out = format!("{} {} {}\r\nHost: {}\r\n", head.method, path, head.version, authority_text);
    for (k, v) in &head.headers {
        let hop = ["host", "connection", "proxy-connection", "proxy-authorization", "keep-alive"];
        if !hop.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes()).map_err(|e| (502, e.to_string()))?;
    let early = head.rest.len().min(usize::try_from(length).unwrap_or(usize::MAX));
    upstream.write_all(&head.rest[..early]).map_err(|e| (502, e.to_string()))?;
    relay(client, upstream, Some(length - early as u64));
    Ok(())
}

/// Copies both ways until both sides are done; `body` bounds what goes
/// from the program to the server (a plain request's remaining body).
fn relay(client: &mut TcpStream, upstream: TcpStream, body: Option<u64>) {
    let (Ok(mut from_client), Ok(mut to_server)) = (client.try_clone(), upstream.try_clone()) else { return };
    let up = std::thread::spawn(move || {
        let _ = match body {
            Some(n) => std::io::copy(&mut (&mut from_client).take(n), &mut to_server),
            None => std::io::copy(&mut from_client, &mut to_server),
        };
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let mut from_server = upstream;
    let _ = std::io::copy(&mut from_server, client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = from_server.shutdown(Shutdown::Both);
    let _ = up.join();
}

fn refuse(client: &mut TcpStream, status: u16, reason: &str) -> std::io::Result<()> {
    let phrase = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        411 => "Length Required",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    };
    let body = format!("libos: {reason}\n");
    let text = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(text.as_bytes())?;
    client.shutdown(Shutdown::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(authority("Example.com:443", None), Ok(("example.com".to_string(), 443)));
        assert_eq!(authority("[::1]:8080", None), Ok(("[::1]".to_string(), 8080)));
        assert_eq!(authority("example.com", Some(80)), Ok(("example.com".to_string(), 80)));
        assert!(authority("example.com", None).is_err());
        assert!(authority("example.com:0", None).is_err());
        assert!(authority(":80", None).is_err());
    }
}
