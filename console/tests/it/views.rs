//! What the console's views read: a process's timeline and grants, an
//! approval's rationale and preview (read as the tool would reach the
//! file), and the audit log a page at a time.

use std::os::unix::fs::symlink;

use libos_kernel::caps::{GrantSpec, Resource, Right};
use libos_kernel::quantum::{Action, Next, ToolResultRecord};
use libos_kernel::testing::Backend;
use libos_kernel::{AuditFilter, Outcome};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::Server;

fn write(path: &str, content: &str) -> String {
    json!({"path": path, "content": content}).to_string()
}

/// Issue 17, defect 5: a parked process's last quantum has its model call
/// (with the rationale), its call, the decision that parked it and what it
/// waits on, though it has no transcript entry yet; approved and run, the
/// same quantum gains the approval, the approved decision and the result.
async fn the_timeline_shows_each_quantum_s_call_decision_and_wait(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    let done = |content: &str, next| Action::Done {
        result: ToolResultRecord { outcome: Outcome::Ok, content: content.into() },
        next,
    };
    let pid = s.spawn("write the report");
    s.quantum("now", "{}", done("it is noon", Next::Continue));
    s.kernel
        .grant(pid, &GrantSpec::parse("write fs:report.txt ask").unwrap(), &libos_kernel::Actor::operator())
        .unwrap();
    let need = libos_kernel::syscall::Need::grant(Resource::fs("report.txt"), Right::Write);
    let checks = s.kernel.authorize(pid, &[need], None).unwrap().checks;
    let ask = Action::Ask { resource: Resource::fs("report.txt"), right: Right::Write, hints: None };
    s.quantum_checked("write_file", &write("report.txt", "v1"), checks, ask);
    let (code, parked) = s.get(&format!("/api/processes/{pid}/timeline")).await;
    assert_eq!(code, 200);
    stable!("timeline_parked", parked);

    let id = s.kernel.pending().unwrap()[0].id;
    assert_eq!(s.post(&format!("/api/requests/{id}/approve"), json!({})).await.0, 200);
    s.resume("wrote 2 bytes to `report.txt`");
    let exit = Next::Exit { code: 0, result: "report written".into() };
    s.quantum("exit", r#"{"result":"report written"}"#, done("report written", exit));
    let (_, finished) = s.get(&format!("/api/processes/{pid}/timeline")).await;
    stable!("timeline_finished", finished);
    // The last quanta only, saying how many there are.
    let (_, last) = s.get(&format!("/api/processes/{pid}/timeline?limit=1")).await;
    assert_eq!((last["total"].clone(), last["quanta"].as_array().unwrap().len()), (json!(4), 1));
    assert_eq!(last["quanta"][0], finished["quanta"][3]);
}

/// The approval card's preview: a write as a diff against the file it
/// would replace, read through the walk the tool uses. A link planted after
/// the call parked never makes it show what the link points to.
async fn an_approval_shows_its_rationale_and_its_call_as_it_will_act(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    let ws = s.workspace.clone();
    let outside = ws.parent().unwrap().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "the secret outside").unwrap();
    std::fs::write(ws.join("notes.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(ws.join("inside.txt"), "not asked about").unwrap();
    std::fs::write(ws.join("config.toml"), "the operator's configuration").unwrap();
    std::fs::write(ws.join("big.txt"), "x".repeat(300 * 1024)).unwrap();
    for name in ["out-link.txt", "in-link.txt", "own-link.txt"] {
        std::fs::write(ws.join(name), "checked as a plain file").unwrap();
    }
    s.kernel.protect(&ws.join("config.toml"));
    let fs = |p: &str| Resource::fs(p);
    let shell = Resource::new(libos_kernel::caps::ResourceKind::Shell, "sh");
    let cases: Vec<(&str, String, Resource, Right)> = vec![
        ("write_file", write("notes.txt", "one\n2\nthree\n"), fs("notes.txt"), Right::Write),
        ("write_file", write("new/report.md", "# Report\n"), fs("new/report.md"), Right::Write),
        ("write_file", write("big.txt", "small now"), fs("big.txt"), Right::Write),
        ("write_file", write("out-link.txt", "pwned"), fs("out-link.txt"), Right::Write),
        ("write_file", write("in-link.txt", "pwned"), fs("in-link.txt"), Right::Write),
        ("write_file", write("own-link.txt", "pwned"), fs("own-link.txt"), Right::Write),
        ("delete_file", json!({"path": "notes.txt"}).to_string(), fs("notes.txt"), Right::Delete),
        ("shell", json!({"argv": ["sh", "-c", "echo $HOME > out\n\u{1b}[2J"]}).to_string(), shell, Right::Exec),
    ];
    for (tool, args, resource, right) in cases {
        s.asks("act", tool, &args, resource, right);
    }
    // Planted after the calls parked (the checks saw plain files).
    for (name, target) in [
        ("out-link.txt", outside.join("secret.txt")),
        ("in-link.txt", ws.join("inside.txt")),
        ("own-link.txt", ws.join("config.toml")),
    ] {
        std::fs::remove_file(ws.join(name)).unwrap();
        symlink(target, ws.join(name)).unwrap();
    }
    let (code, pending) = s.get("/api/requests").await;
    assert_eq!(code, 200);
    let shown: Vec<Value> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"tool": r["tool"], "rationale": r["rationale"], "preview": r["preview"]}))
        .collect();
    stable!("previews", shown);
    let text = pending.to_string();
    for secret in ["the secret outside", "not asked about", "the operator's configuration"] {
        assert!(!text.contains(secret), "a preview read through a planted link: {secret}");
    }
    // One request reads the same.
    let id = pending[0]["id"].as_i64().unwrap();
    assert_eq!(s.get(&format!("/api/requests/{id}")).await, (200, pending[0].clone()));
}

async fn caps_list_a_process_s_grants_with_their_status(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    let pid = s.busy("tell the time");
    let extra =
        s.kernel.grant(pid, &GrantSpec::parse("read fs:notes/** uses=2").unwrap(), &libos_kernel::Actor::operator());
    s.kernel.revoke(extra.unwrap(), &libos_kernel::Actor::operator()).unwrap();
    let (code, caps) = s.get(&format!("/api/processes/{pid}/caps")).await;
    assert_eq!(code, 200);
    stable!("caps", caps);
    let (code, missing) = s.get("/api/processes/99/caps").await;
    assert_eq!((code, &missing["error"]["code"]), (404, &json!("not_found")));
}

/// The audit table pages back with `before`: the newest `limit` records
/// before a sequence number, with the other filters still applied.
async fn the_audit_log_pages_back_from_any_record(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    for goal in ["a", "b", "c"] {
        s.busy(goal);
    }
    let all: Vec<i64> =
        s.kernel.audit(&AuditFilter::default()).unwrap().iter().map(|r| r.seq.get()).collect::<Vec<_>>();
    let seqs = |v: &Value| v.as_array().unwrap().iter().map(|r| r["seq"].as_i64().unwrap()).collect::<Vec<_>>();
    let n = all.len();
    let (_, newest) = s.get("/api/audit?limit=4").await;
    assert_eq!(seqs(&newest), all[n - 4..]);
    let (_, older) = s.get(&format!("/api/audit?limit=4&before={}", all[n - 4])).await;
    assert_eq!(seqs(&older), all[n - 8..n - 4]);
    let (_, spawns) = s.get(&format!("/api/audit?tool=spawn&before={}", all[n - 1])).await;
    assert_eq!(spawns.as_array().unwrap().iter().map(|r| r["pid"].clone()).collect::<Vec<_>>(), [1, 2, 3]);
    let (_, first) = s.get("/api/audit?before=2").await;
    assert_eq!(seqs(&first), [1]);
}

libos_kernel::on_both_stores!(async:
    the_timeline_shows_each_quantum_s_call_decision_and_wait,
    an_approval_shows_its_rationale_and_its_call_as_it_will_act,
    caps_list_a_process_s_grants_with_their_status,
    the_audit_log_pages_back_from_any_record,
);
