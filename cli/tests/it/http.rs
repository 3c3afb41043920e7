//! `http_request` through the binary: an operator header configured in
//! `libos.toml` with its value in the scheduler's environment reaches the
//! server, and appears nowhere libos keeps or shows (the audit, `libos
//! logs`, `libos pending`, the store's files); the approval card shows the
//! method and the exact URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

const SECRET: &str = "tok-5ecret-9f1c";

/// A local HTTP server answering every request `200 hello, key KEY` (the
/// `x-api-key` it got); returns its port and the requests' heads (request
/// line and header lines).
fn server() -> (u16, Arc<Mutex<Vec<Vec<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heads = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = Vec::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let line = line.trim_end().to_string();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push(line);
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            // It echoes the key, as debugging endpoints do.
            let key = head.iter().find_map(|l| l.strip_prefix("x-api-key: ")).unwrap_or("none").to_string();
            heads.lock().unwrap().push(head);
            let body = format!("hello, key {key}");
            let answer =
                format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            let _ = (&conn).write_all(answer.as_bytes());
        }
    });
    (port, seen)
}

const IMAGE: &str = r#"
name = "fetcher"
version = "1"
system_prompt = "You fetch things."
tools = ["http_request", "exit"]
"#;

fn script(port: u16) -> String {
    format!(
        r#"
[[agent]]
image = "fetcher"

[[agent.step]]
say = "Who am I?"
tool = "http_request"
args = {{ method = "GET", url = "http://127.0.0.1:{port}/me" }}

[[agent.step]]
tool = "http_request"
args = {{ method = "POST", url = "http://127.0.0.1:{port}/notes?draft=1", body = "remember this", headers = {{ "Content-Type" = "text/plain" }} }}

[[agent.step]]
tool = "exit"
args = {{ result = "noted" }}
"#
    )
}

#[test]
fn operator_headers_reach_the_server_and_nothing_libos_shows() {
    let env = Env::new();
    let (port, seen) = server();
    std::fs::create_dir_all(env.path("imgs")).unwrap();
    env.write("imgs/fetcher.toml", IMAGE);
    env.write(
        "libos.toml",
        "image_dirs = [\"imgs\"]\n\n[http.\"127.0.0.1\"]\nheaders = { X-Api-Key = \"env:FETCH_TOKEN\" }\nallow_http = true\n",
    );
    let script = env.write("script.toml", &script(port));
    let read = format!("read net:127.0.0.1:{port}");
    let write = format!("write net:127.0.0.1:{port} ask");
    assert_eq!(env.ok(&["spawn", "fetcher", "--goal", "take a note", "--grant", &read, "--grant", &write]), "1\n");
    let run = || {
        let out =
            env.cmd(&["run", "--until-idle", "--script", s(&script)]).env("FETCH_TOKEN", SECRET).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));
    };
    run();

    // The POST is parked: the card shows the method and the exact URL.
    let card = env.ok(&["pending"]);
    let url = format!("http://127.0.0.1:{port}/notes?draft=1");
    for needle in [
        "http_request",
        "\"method\": \"POST\"",
        &format!("\"url\": \"{url}\""),
        &format!("asks: write net:127.0.0.1:{port}"),
    ] {
        assert!(card.contains(needle), "the card lacks {needle:?}:\n{card}");
    }
    let open: Value = serde_json::from_str(&env.ok(&["pending", "--json"])).unwrap();
    assert_eq!(open[0]["args"]["url"], url.as_str());
    let id = open[0]["id"].to_string();
    env.ok(&["approve", &id]);
    run();

    let heads = seen.lock().unwrap().clone();
    assert_eq!(
        heads.iter().map(|h| h[0].clone()).collect::<Vec<_>>(),
        vec!["GET /me HTTP/1.1".to_string(), "POST /notes?draft=1 HTTP/1.1".to_string()]
    );
    for head in &heads {
        assert!(head.contains(&format!("x-api-key: {SECRET}")), "{head:?}");
    }

    let logs = env.ok(&["logs", "1"]);
    for needle in [
        "  says: Who am I?",
        &format!("  call: http_request {{\"method\":\"GET\",\"url\":\"http://127.0.0.1:{port}/me\"}}"),
        "  result (ok): HTTP/1.1 200 OK",
        "hello, key [the operator's x-api-key header, redacted]",
        "exited(0): noted",
    ] {
        assert!(logs.contains(needle), "logs lack {needle:?}:\n{logs}");
    }
    let audit = env.ok(&["audit", "--json"]);
    assert!(audit.contains("http_request"), "{audit}");
    for (what, text) in
        [("logs", &logs), ("audit", &audit), ("pending", &card), ("ps", &env.ok(&["ps", "--all", "--json"]))]
    {
        assert!(!text.contains(SECRET), "the secret is in `libos {what}`:\n{text}");
    }
    // Not in the store's files either, whatever the pages hold.
    for entry in std::fs::read_dir(env.path(".libos")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret is in {}", path.display());
    }
    assert!(env.ok(&["audit", "verify"]).starts_with("audit chain intact"));
}
