//! `libos serve` as an operator starts it: it prints where the console is
//! and the token, serves the store the CLI uses, and stops on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use pretty_assertions::assert_eq;

use crate::support::Env;

/// One HTTP/1.1 request; returns the status and the body.
pub(crate) fn http(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// `libos serve --addr 127.0.0.1:0 EXTRA` on the env's store, and its output lines.
pub(crate) fn serve(
    env: &Env,
    extra: &[&str],
) -> (std::process::Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("libos"))
        .current_dir(env.dir.path())
        .env("LIBOS_DB", env.db())
        .env_remove("LIBOS_TOKEN")
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

#[test]
fn serve_prints_the_console_address_and_token_and_acts_on_the_same_store() {
    let env = Env::new();
    env.ok(&["spawn", "assistant", "--goal", "be served"]);
    let (mut child, mut lines) = serve(&env, &[]);
    let console = lines.next().unwrap().unwrap();
    let token_line = lines.next().unwrap().unwrap();
    // "libos console: http://127.0.0.1:PORT/#token=TOKEN"
    let url = console.strip_prefix("libos console: http://").unwrap();
    let (addr, token) = url.split_once("/#token=").unwrap();
    assert_eq!(token_line, format!("token (for `Authorization: Bearer`): {token}"));
    assert_eq!(token.len(), 32);

    let (status, body) = http(addr, "GET", "/api/processes", None);
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["goal"], "be served");
    assert_eq!(http(addr, "POST", "/api/processes/1/kill", None).0, 401);
    assert_eq!(http(addr, "POST", "/api/processes/1/kill", Some(token)).0, 200);
    // The CLI sees what the API did, as the operator's act.
    let ps: serde_json::Value = serde_json::from_str(&env.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(ps[0]["state_detail"]["by"], "human:operator");

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success(), "a clean stop on SIGTERM");
}

/// Issue 14, hole 4: `libos serve --run --token T` put the console token in
/// `/proc/PID/cmdline`, where a process with `exec shell:curl` read it and
/// approved a sibling's parked call as the operator. The token now comes
/// only from `LIBOS_TOKEN` or a file.
#[test]
fn the_console_token_is_never_taken_on_the_command_line() {
    let env = Env::new();
    let out = env.cmd(&["serve", "--addr", "127.0.0.1:0", "--token", "hunter2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "libos: error: --token would put the console token on the command line, where every local program can \
         read it (/proc/PID/cmdline): set LIBOS_TOKEN or use --token-file FILE\n"
    );
    let file = env.dir.path().join("token");
    std::fs::write(&file, "from-a-file\n").unwrap();
    let (mut child, mut lines) = serve(&env, &["--token-file", file.to_str().unwrap()]);
    let console = lines.next().unwrap().unwrap();
    assert!(console.ends_with("/#token=from-a-file"), "{console}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("from-a-file"));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn serve_json_says_where_it_listens_in_one_line() {
    let env = Env::new();
    let (mut child, mut lines) = serve(&env, &["--json"]);
    let said: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let (addr, token) = (said["addr"].as_str().unwrap(), said["token"].as_str().unwrap());
    assert_eq!(said["url"], format!("http://{addr}/#token={token}"));
    assert_eq!(http(addr, "GET", "/api/audit/head", Some(token)).0, 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// Issue 17, defect 9: a token with a character the console page does not
/// keep (`abc.def`) was accepted, and every action from the page got 401;
/// a short token was accepted on an address beyond this machine.
#[test]
fn a_token_the_console_cannot_carry_or_too_short_to_expose_is_refused_at_start() {
    let env = Env::new();
    let check = |token: &str, addr: &str, message: &str| {
        let out = env.cmd(&["serve", "--addr", addr]).env("LIBOS_TOKEN", token).output().unwrap();
        assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stderr).as_ref()), (Some(2), message), "{token}");
        assert_eq!(out.stdout, b"", "nothing served, no token printed");
    };
    check(
        "abc.def",
        "127.0.0.1:0",
        "libos: error: LIBOS_TOKEN holds '.': a console token is letters, digits, `-` and `_` only (what the \
         console page keeps)\n",
    );
    check(
        "s3cret",
        "0.0.0.0:0",
        "libos: error: LIBOS_TOKEN is 6 characters: a server reachable beyond this machine needs a token of at \
         least 16 (leave it unset to have one generated)\n",
    );
    let file = env.write("token", "bad token with spaces\n");
    let out = env.cmd(&["serve", "--addr", "127.0.0.1:0", "--token-file", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "libos: error: the token in {} holds ' ': a console token is letters, digits, `-` and `_` only (what \
             the console page keeps)\n",
            file.display()
        )
    );
}
