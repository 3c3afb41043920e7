//! Every endpoint, the token, and the error codes.

use libos_kernel::Actor;
use libos_kernel::audit::KernelAction;
use libos_kernel::quantum::{Action, Next, ToolResultRecord};
use libos_kernel::testing::Backend;
use libos_kernel::{AuditFilter, Outcome};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::{Server, TOKEN};

async fn reads_return_the_same_shapes_as_the_cli(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    let parked = s.parked_on_approval("write the report");
    let busy = s.busy("tell the time");

    let (code, list) = s.get("/api/processes").await;
    assert_eq!(code, 200);
    assert_eq!(
        list.as_array().unwrap().iter().map(|p| (p["pid"].clone(), p["state"].clone())).collect::<Vec<_>>(),
        [(json!(parked.get()), json!("waiting")), (json!(busy.get()), json!("runnable"))]
    );
    let (_, one) = s.get(&format!("/api/processes/{parked}")).await;
    stable!("process", one);
    let (_, transcript) = s.get(&format!("/api/processes/{busy}/transcript")).await;
    stable!("transcript", transcript);
    let (_, pending) = s.get("/api/requests").await;
    stable!("requests", pending);
    let id = pending[0]["id"].as_i64().unwrap();
    let (code, request) = s.get(&format!("/api/requests/{id}")).await;
    assert_eq!((code, &request), (200, &pending[0]));

    assert_eq!(s.get(&format!("/api/processes/{parked}/inbox")).await, (200, json!([])));
    assert_eq!(s.get(&format!("/api/processes/{parked}/memory")).await, (200, json!([])));
    let (_, audit) = s.get(&format!("/api/audit?pid={parked}&outcome=parked")).await;
    assert_eq!(
        audit.as_array().unwrap().iter().map(|r| r["action"].clone()).collect::<Vec<_>>(),
        [json!("write_file")]
    );
    let (_, head) = s.get("/api/audit/head").await;
    let (seq, hash) = s.kernel.audit_head().unwrap();
    assert_eq!(head, json!({"seq": seq.get(), "hash": hash}));
    let (_, verify) = s.get(&format!("/api/audit/verify?expect_head={hash}")).await;
    assert_eq!(
        verify,
        json!({"ok": true, "records": seq.get(), "unsealed": 0, "head": hash, "first_bad_seq": null, "problem": null})
    );
}

async fn actions_need_the_token_and_are_audited_as_the_operator(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    let parked = s.parked_on_approval("write the report");
    let busy = s.busy("tell the time");
    let id = s.kernel.pending().unwrap()[0].id;
    let approve = format!("{}/api/requests/{id}/approve", s.base);

    // No token, a wrong token, the token as a cookie: refused, nothing done.
    for req in [
        s.client.post(&approve),
        s.client.post(&approve).bearer_auth("wrong"),
        s.client.post(&approve).header("cookie", format!("token={TOKEN}")),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    assert_eq!(s.kernel.pending().unwrap().len(), 1);

    let (code, decided) = s.post(&format!("/api/requests/{id}/approve"), json!({})).await;
    assert_eq!((code, &decided["status"], &decided["grant"]), (200, &json!("approved"), &Value::Null));
    let (code, again) = s.post(&format!("/api/requests/{id}/approve"), json!({})).await;
    assert_eq!(
        (code, again),
        (409, json!({"error": {"code": "conflict", "message": format!("request {id} was already approved")}}))
    );

    let (code, sent) = s.post(&format!("/api/processes/{busy}/messages"), json!({"text": "hurry"})).await;
    assert_eq!(code, 200);
    let (_, inbox) = s.get(&format!("/api/processes/{busy}/inbox")).await;
    assert_eq!((inbox[0]["id"].clone(), inbox[0]["body"].clone()), (sent["id"].clone(), json!("hurry")));

    assert_eq!(s.post(&format!("/api/processes/{busy}/pause"), json!({})).await.1["state"], "paused");
    assert_eq!(s.post(&format!("/api/processes/{busy}/resume"), json!({})).await.1["state"], "runnable");
    let (code, killed) = s.post(&format!("/api/processes/{parked}/kill"), json!({"reason": "enough"})).await;
    assert_eq!((code, killed), (200, json!({"killed": [parked.get()]})));
    let (code, again) = s.post(&format!("/api/processes/{parked}/kill"), json!({})).await;
    assert_eq!((code, &again["error"]["code"]), (409, &json!("conflict")));

    // The log reads as if the CLI had done it.
    let actions: Vec<(String, String)> = s
        .kernel
        .audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.actor == Actor::operator() && !r.action.is(KernelAction::Spawn))
        .map(|r| (r.action.to_string(), r.outcome.to_string()))
        .collect();
    // The refused second approval is audited too.
    let expected =
        [("approve", "ok"), ("approve", "error"), ("send", "ok"), ("pause", "ok"), ("resume", "ok"), ("kill", "ok")];
    assert_eq!(actions, expected.map(|(a, o)| (a.to_string(), o.to_string())));
}

async fn deny_answer_and_always_behave_as_in_the_cli(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    s.parked_on_approval("first");
    s.parked_on_approval("second");
    let ids: Vec<i64> = s.kernel.pending().unwrap().iter().map(|r| r.id.get()).collect();
    let (code, denied) = s.post(&format!("/api/requests/{}/deny", ids[0]), json!({"reason": "not now"})).await;
    assert_eq!((code, &denied["status"]), (200, &json!("denied")));
    let (code, always) = s.post(&format!("/api/requests/{}/approve", ids[1]), json!({"always": true})).await;
    assert_eq!(code, 200);
    assert!(always["grant"].is_i64(), "{always}");
    // An approval is not a question.
    let (code, body) = s.post(&format!("/api/requests/{}/answer", ids[1]), json!({"text": "yes"})).await;
    assert_eq!((code, &body["error"]["code"]), (409, &json!("conflict")));
}

async fn wrong_ids_and_bad_input_get_json_errors_with_stable_codes(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    s.busy("tell the time");
    let cases: Vec<(&str, &str, Value)> = vec![
        ("GET", "/api/processes/99", json!({"error": {"code": "not_found", "message": "no process with pid 99"}})),
        (
            "GET",
            "/api/processes/abc",
            json!({"error": {"code": "bad_request", "message": "invalid pid `abc`: expected a positive integer"}}),
        ),
        ("GET", "/api/requests/7", json!({"error": {"code": "not_found", "message": "no request with id 7"}})),
        ("GET", "/api/memory/3", json!({"error": {"code": "not_found", "message": "no object with id 3"}})),
        (
            "GET",
            "/api/nowhere",
            json!({"error": {"code": "not_found", "message": "no such endpoint: GET /api/nowhere"}}),
        ),
        (
            "GET",
            "/api/audit?outcome=meh",
            json!({"error": {"code": "bad_request", "message": "invalid outcome `meh` (expected one of ok, error, denied, rejected, parked, unknown, pending)"}}),
        ),
        (
            "GET",
            "/api/audit?since=yesterday",
            json!({"error": {"code": "bad_request", "message": "invalid time `yesterday`: expected RFC 3339 or an age like 30s, 15m, 2h, 7d"}}),
        ),
        ("POST", "/api/requests/7/approve", json!({"error": {"code": "not_found", "message": "no request with id 7"}})),
        (
            "POST",
            "/api/processes/99/kill",
            json!({"error": {"code": "not_found", "message": "no process with pid 99"}}),
        ),
        (
            "POST",
            "/api/processes/1/messages",
            json!({"error": {"code": "bad_request", "message": "`text` is required"}}),
        ),
    ];
    let mut got = Vec::new();
    for (method, path, _) in &cases {
        let req = match *method {
            "GET" => s.client.get(format!("{}{path}", s.base)),
            _ => s.client.post(format!("{}{path}", s.base)).bearer_auth(TOKEN),
        };
        let r = req.send().await.unwrap();
        got.push((r.status().as_u16(), r.json::<Value>().await.unwrap()));
    }
    let expected: Vec<(u16, Value)> = cases
        .into_iter()
        .map(|(_, _, v)| {
            let code = match v["error"]["code"].as_str().unwrap() {
                "not_found" => 404,
                _ => 400,
            };
            (code, v)
        })
        .collect();
    assert_eq!(got, expected);

    // A malformed body is an error, not a default.
    let r = s
        .client
        .post(format!("{}/api/processes/1/messages", s.base))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
}

async fn a_loopback_server_refuses_other_hosts_and_a_public_one_wants_the_token_for_reads() {
    let s = Server::start().await;
    let r = s.client.get(format!("{}/api/processes", s.base)).header("host", "attacker.example").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden_host");
    let r = s.client.get(format!("{}/api/processes", s.base)).header("host", "localhost:1234").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let public = Server::start_on(Backend::Sqlite, false).await;
    let r = public.client.get(format!("{}/api/processes", public.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = public.client.get(format!("{}/api/processes", public.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The page itself holds no data and asks for the token.
    let r = public.client.get(format!("{}/", public.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("<title>libos console</title>"));
}

/// Issue 14, hole 6 (terminal injection), in the browser: model text with
/// markup, escape sequences, newlines, C1 and bidi controls comes back from
/// the API exactly, and the page only ever inserts it as text.
async fn model_text_stays_exact_in_the_api_and_the_page_never_parses_it_as_html() {
    const GOAL: &str = "<img src=x onerror=alert(1)>\u{1b}[2J\u{1b}[H\nfake line\u{9b}2J\u{202e}gpj.exe";
    const ARGS: &str = r#"{"path":"<b>x</b>\u001b[1A\u001b[2K"}"#;
    const RESULT: &str = "</pre><script>alert(1)</script>\r\u{1b}]52;c;cHduZWQ=\u{7}";
    let s = Server::start().await;
    s.spawn(GOAL);
    let done = Action::Done {
        result: ToolResultRecord { outcome: Outcome::Ok, content: RESULT.into() },
        next: Next::Continue,
    };
    let pid = s.quantum("read_file", ARGS, done);
    let (_, process) = s.get(&format!("/api/processes/{pid}")).await;
    assert_eq!(process["goal"], GOAL);
    let (_, transcript) = s.get(&format!("/api/processes/{pid}/transcript")).await;
    let call = &transcript["quanta"][0]["tool_calls"][0];
    assert_eq!(
        (&call["args"], &call["result"]),
        (&json!({"path": "<b>x</b>\u{1b}[1A\u{1b}[2K"}), &Value::from(RESULT))
    );

    let page = s.client.get(format!("{}/", s.base)).send().await.unwrap().text().await.unwrap();
    for parser in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "createContextualFragment",
        "DOMParser",
        "eval(",
    ] {
        assert!(!page.contains(parser), "the console page uses {parser}, which would parse model text as HTML");
    }
    assert!(
        page.contains("document.createTextNode(shown(String(k ?? \"\")))"),
        "el() no longer inserts children as text"
    );
}

libos_kernel::on_both_stores!(async:
    reads_return_the_same_shapes_as_the_cli,
    actions_need_the_token_and_are_audited_as_the_operator,
    deny_answer_and_always_behave_as_in_the_cli,
    wrong_ids_and_bad_input_get_json_errors_with_stable_codes,
);

libos_kernel::tests!(async:
    a_loopback_server_refuses_other_hosts_and_a_public_one_wants_the_token_for_reads,
    model_text_stays_exact_in_the_api_and_the_page_never_parses_it_as_html,
);
