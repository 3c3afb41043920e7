//! A program whose process holds `net:` grants reaches the network only
//! through the scheduler's proxy, which decides every destination; nothing
//! else leaves its empty network namespace.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libos_sandbox::{Attempt, Cancel, Cmd, NetGate, Network, Output, Reach, Use};
use pretty_assertions::assert_eq;

use crate::escape::{Fixture, fixture, policy, sandbox, text};

/// Allows exactly the listed destinations (any use), each with its reach.
#[derive(Debug)]
struct Gate(Vec<(&'static str, u16, Reach)>);

impl NetGate for Gate {
    fn decide(&self, host: &str, port: u16, use_: Use) -> Result<Reach, String> {
        let right = if use_ == Use::Read { "read" } else { "write" };
        self.0
            .iter()
            .find(|(h, p, _)| *h == host && *p == port)
            .map(|(_, _, r)| *r)
            .ok_or_else(|| format!("no grant allows {right} net:{host}:{port}"))
    }
}

/// An HTTP server on the host's loopback: answers the first request on
/// each connection, then reads to the end, keeping every request line seen.
struct Server {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let mut answered = false;
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if !answered && got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let body = "hello from the host\n";
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                        conn.write_all(format!("{head}{body}").as_bytes()).unwrap();
                        answered = true;
                    }
                }
                let text = String::from_utf8_lossy(&got).into_owned();
                let requests =
                    text.lines().filter(|l| l.ends_with("HTTP/1.1") || l.starts_with("Host:")).map(str::to_string);
                seen.lock().unwrap().extend(requests);
            });
        }
    });
    Server { port, lines }
}

fn run_with(f: &Fixture, gate: Gate, argv: &[&str]) -> Output {
    let gate: Arc<dyn NetGate> = Arc::new(gate);
    let mut p = policy(f);
    p.network = Network::Proxy;
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let env = vec![("PATH".to_string(), std::env::var("PATH").unwrap_or_default())];
    let cmd =
        Cmd { argv: &argv, cwd: &f.ws, env: &env, policy: &p, timeout: Duration::from_secs(30), net: Some(&gate) };
    sandbox().run(&cmd, &Cancel::new()).unwrap()
}

fn attempt(method: &str, target: String, outcome: Result<(), &str>) -> Attempt {
    Attempt { method: method.to_string(), target, outcome: outcome.map_err(str::to_string) }
}

#[test]
fn a_granted_destination_is_reached_through_the_proxy_and_nothing_else_is() {
    let f = fixture();
    let (s, other) = (server(), server());
    let (p, q) = (s.port.to_string(), other.port.to_string());
    let script = format!(
        "curl -sS http://127.0.0.1:{p}/plain; \
         curl -sS -p http://127.0.0.1:{p}/tunnel; \
         curl -sS -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:{q}/ungranted; \
         curl -sS --noproxy '*' http://127.0.0.1:{p}/direct || echo direct refused"
    );
    let o = run_with(&f, Gate(vec![("127.0.0.1", s.port, Reach::Any)]), &["sh", "-c", &script]);
    let (out, err) = text(&o);
    assert_eq!(out, "hello from the host\nhello from the host\n403\ndirect refused\n", "{err}");
    assert!(err.contains("Failed to connect"), "{err}");
    assert_eq!(
        o.network,
        [
            attempt("GET", format!("127.0.0.1:{p}"), Ok(())),
            attempt("CONNECT", format!("127.0.0.1:{p}"), Ok(())),
            attempt("GET", format!("127.0.0.1:{q}"), Err(&format!("no grant allows read net:127.0.0.1:{q}"))),
        ]
    );
    let host = format!("Host: 127.0.0.1:{p}");
    assert_eq!(*s.lines.lock().unwrap(), ["GET /plain HTTP/1.1", host.as_str(), "GET /tunnel HTTP/1.1", host.as_str()]);
    assert!(other.lines.lock().unwrap().is_empty());
}

#[test]
fn the_proxy_is_the_only_port_a_program_may_connect_to() {
    let f = fixture();
    // A listener of the program's own, in its namespace: Landlock refuses
    // the connection all the same.
    let script = "import socket\n\
                  l = socket.socket(); l.bind(('127.0.0.1', 5000)); l.listen()\n\
                  try:\n    socket.create_connection(('127.0.0.1', 5000))\n\
                  except OSError as e:\n    print(e.strerror)\n";
    let o = run_with(&f, Gate(Vec::new()), &["/usr/bin/python3", "-c", script]);
    assert_eq!(text(&o), ("Permission denied\n".to_string(), String::new()));
    assert_eq!(o.network, []);
}

#[test]
fn a_wildcard_grant_does_not_lead_to_the_loopback() {
    let f = fixture();
    let s = server();
    let url = format!("http://localhost:{}/", s.port);
    let o = run_with(&f, Gate(vec![("localhost", s.port, Reach::Public)]), &["curl", "-sS", &url]);
    let (out, _) = text(&o);
    let why = "localhost resolves to 127.0.0.1, which is not a public address: only a grant naming localhost exactly reaches it";
    assert_eq!(out, format!("libos: {why}\n"));
    assert_eq!(o.network, [attempt("GET", format!("localhost:{}", s.port), Err(why))]);
    assert!(s.lines.lock().unwrap().is_empty());
}

#[test]
fn a_plain_connection_carries_one_decided_request_only() {
    let f = fixture();
    let (s, other) = (server(), server());
    // Two requests pipelined on one connection: the second, to an
    // ungranted port, must not reach anything.
    let script = format!(
        "import socket\n\
         c = socket.create_connection(('127.0.0.1', 3128))\n\
         c.sendall(b'GET http://127.0.0.1:{p}/first HTTP/1.1\\r\\nHost: a\\r\\n\\r\\nGET http://127.0.0.1:{q}/second HTTP/1.1\\r\\nHost: b\\r\\n\\r\\n')\n\
         data = b''\n\
         while True:\n\
         \x20   d = c.recv(4096)\n\
         \x20   if not d: break\n\
         \x20   data += d\n\
         print(data.decode().splitlines()[-1])\n",
        p = s.port,
        q = other.port
    );
    let o = run_with(&f, Gate(vec![("127.0.0.1", s.port, Reach::Any)]), &["/usr/bin/python3", "-c", &script]);
    let (out, err) = text(&o);
    assert_eq!(out, "hello from the host\n", "{err}");
    // The decided host, not the `Host: a` the program wrote.
    let host = format!("Host: 127.0.0.1:{}", s.port);
    assert_eq!(*s.lines.lock().unwrap(), ["GET /first HTTP/1.1", host.as_str()]);
    assert!(other.lines.lock().unwrap().is_empty());
}

#[test]
fn a_header_smuggled_with_a_bare_line_feed_is_refused() {
    let f = fixture();
    let s = server();
    let script = format!(
        "import socket\n\
         c = socket.create_connection(('127.0.0.1', 3128))\n\
         c.sendall(b'GET http://127.0.0.1:{p}/ HTTP/1.1\\r\\nX: a\\nGET /smuggled HTTP/1.1\\r\\n\\r\\n')\n\
         print(c.recv(4096).decode().splitlines()[0])\n",
        p = s.port
    );
    let o = run_with(&f, Gate(vec![("127.0.0.1", s.port, Reach::Any)]), &["/usr/bin/python3", "-c", &script]);
    assert_eq!(text(&o).0, "HTTP/1.1 400 Bad Request\n");
    assert!(s.lines.lock().unwrap().is_empty());
}
