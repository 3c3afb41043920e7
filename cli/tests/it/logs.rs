//! `libos logs` shows every quantum (issue 17, defect 5): the one that ran
//! an approved call, who decided each request and when, and the model
//! call's retried attempts; `--json` carries the same, as the HTTP API does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::{Env, s};

const SCRIPT: &str = r#"
[[agent]]
image = "assistant"

[[agent.step]]
say = "Write the first file."
tool = "write_file"
args = { path = "a.txt", content = "a" }

[[agent.step]]
tool = "write_file"
args = { path = "b.txt", content = "b" }

[[agent.step]]
tool = "exit"
args = { result = "one of two" }
"#;

/// Timestamps, latencies and estimated token counts vary.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", "[time]"), (r"\d+ ms", "[ms] ms"), (r"~\d+/\d+", "~[in]/[out]")]
}

/// Regression: quanta were numbered 1, 3, 4 (the one that ran the approved
/// call had nothing to show), the approved call read as a plain result, and
/// neither decision said who made it or when.
#[test]
fn logs_show_every_quantum_and_who_decided_each_request_and_when() {
    let env = Env::new();
    let script = env.write("script.toml", SCRIPT);
    env.ok(&["spawn", "assistant", "--goal", "write two files", "--grant", "write fs:** ask"]);
    let run = || env.ok(&["run", "--until-idle", "--script", s(&script)]);
    run();
    env.ok(&["approve", "1"]);
    run();
    env.ok(&["deny", "2", "--reason", "one file is enough"]);
    run();
    let logs = env.ok(&["logs", "1"]);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!(logs);
    });

    // The JSON the API serves, field for field.
    let t: Value = serde_json::from_str(&env.ok(&["logs", "1", "--json"])).unwrap();
    let quanta = t["quanta"].as_array().unwrap();
    let numbers: Vec<&Value> = quanta.iter().map(|q| &q["quantum"]).collect();
    assert_eq!(numbers, vec![&json!(1), &json!(2), &json!(3), &json!(4)]);
    let leases: Vec<Value> = quanta
        .iter()
        .map(|q| {
            let l = &q["leases"][0];
            json!({"ended": l["ended"], "ended_detail": l["ended_detail"], "resumed": l["resumed"]})
        })
        .collect();
    assert_eq!(
        leases,
        vec![
            json!({"ended": "parked", "ended_detail": "human: request 1", "resumed": null}),
            json!({"ended": "committed", "ended_detail": null, "resumed": 1}),
            json!({"ended": "parked", "ended_detail": "human: request 2", "resumed": null}),
            json!({"ended": "exited", "ended_detail": null, "resumed": null}),
        ]
    );
    let decision = |q: usize| {
        let d = &quanta[q]["leases"][0]["decisions"][0];
        (d["request"].clone(), d["verdict"].clone(), d["by"].clone(), d["outcome"].clone(), d["at"].is_string())
    };
    assert_eq!(decision(0), (json!(1), json!("approve"), json!("human:operator"), json!("ok"), true));
    assert_eq!(decision(2), (json!(2), json!("deny"), json!("human:operator"), json!("ok"), true));
    assert_eq!(quanta[2]["leases"][0]["woke"]["why"], "denied");
}

/// A model endpoint on 127.0.0.1 that answers its first request 503 and
/// every later one with a call of `exit`.
fn flaky_model() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().flatten().enumerate() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let (status, body) = if n == 0 {
                ("503 Service Unavailable", "overloaded, try again".to_string())
            } else {
                let call = json!({"id": "c1", "type": "function", "function": {"name": "exit", "arguments": "{\"result\":\"done\"}"}});
                let message = json!({"role": "assistant", "content": null, "tool_calls": [call]});
                let usage = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15});
                let choice = json!({"index": 0, "message": message, "finish_reason": "tool_calls"});
                ("200 OK", json!({"id": "r", "model": "m", "choices": [choice], "usage": usage}).to_string())
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = (&conn).write_all(answer.as_bytes());
        }
    });
    port
}

/// A model call's retried attempts are shown as such, before its answer.
#[test]
fn logs_show_a_model_calls_retried_attempts() {
    let env = Env::new();
    let port = flaky_model();
    env.write(
        "libos.toml",
        &format!("[models.default]\nbase_url = \"http://127.0.0.1:{port}/v1\"\nmodel = \"m\"\ncall_mode = \"native\"\ncontext_window = 4096\n"),
    );
    env.ok(&["spawn", "assistant", "--goal", "finish"]);
    env.ok(&["run", "--until-idle"]);
    let logs = env.ok(&["logs", "1"]);
    let shown: Vec<&str> = logs.lines().filter(|l| l.starts_with("  retried") || l.starts_with("  call")).collect();
    assert_eq!(
        shown,
        vec![
            "  retried (attempt 1): endpoint returned 503 Service Unavailable: overloaded, try again",
            "  call: exit {\"result\":\"done\"}"
        ]
    );
    let t: Value = serde_json::from_str(&env.ok(&["logs", "1", "--json"])).unwrap();
    let calls: Vec<(Value, Value)> = t["quanta"][0]["model_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["retry"].clone(), c["outcome"].clone()))
        .collect();
    assert_eq!(calls, vec![(json!(true), json!("error")), (json!(false), json!("ok"))]);
}
