//! What runs after an approval is exactly what the audit chain holds (issue
//! 14, hole 3). The decision compares the request row and the parked call
//! with the chain's record of the park, and the lease that resumes the call
//! compares them again: a stored call edited behind libos's back is refused,
//! audited, never run, and the process is told.

use libos_kernel::audit::AuditKind;
use libos_kernel::{Actor, AuditFilter, AuditSeq, KernelError, Outcome, Pid, ProcState, RequestId, Verdict, WaitOn};
use pretty_assertions::assert_eq;
use serde_json::json;

use libos_kernel::testing::Backend;

use crate::world::{World, step, world_on};

fn approve(w: &World, id: RequestId, always: bool) -> Result<(), KernelError> {
    w.kernel.decide(id, &Verdict::Approve { always }, &Actor::operator()).map(drop)
}

/// A coder (every program asks) parked on `shell ["echo", "harmless"]`; it
/// exits after that call's result.
async fn parked_on_echo(w: &World) -> (Pid, RequestId) {
    let pid = w.spawn(
        "coder",
        "say something harmless",
        &[],
        vec![step("shell", json!({"argv": ["echo", "harmless"]})), step("exit", json!({"result": "done"}))],
    );
    w.run().await;
    let id = w.only_request();
    assert_eq!(w.state(pid), ProcState::Waiting { on: WaitOn::Human(id) });
    (pid, id)
}

/// A worker parked on `list_dir` of a file holding a secret (`read fs:** ask`).
async fn parked_on_listing(w: &World) -> (Pid, RequestId) {
    std::fs::write(w.dir.path().join("secret.txt"), "the launch codes").unwrap();
    let pid = w.spawn(
        "worker",
        "list",
        &["read fs:** ask"],
        vec![step("list_dir", json!({"path": "secret.txt"})), step("exit", json!({"result": "done"}))],
    );
    w.run().await;
    (pid, w.only_request())
}

/// The seq of the record of the call `pid` parked on.
fn park_record(w: &World, pid: Pid) -> AuditSeq {
    let filter = AuditFilter { pid: Some(pid), outcome: Some(Outcome::Parked), ..Default::default() };
    w.kernel.audit(&filter).unwrap()[0].seq
}

/// `sh -c` touching a file in the workspace, as canonical `shell` args.
fn evil_args(w: &World) -> String {
    json!({"argv": ["sh", "-c", format!("touch {}", w.dir.path().join("pwned").display())]}).to_string()
}

/// How a stored call differs from its record at `seq` in `part`.
fn differs(part: &str, seq: AuditSeq) -> String {
    format!("the stored call differs from the call recorded in the audit log (record {seq}) in {part}")
}

/// The operator's records about `pid`: `action outcome: detail`.
fn operator_records(w: &World, pid: Pid) -> Vec<String> {
    w.kernel
        .audit(&AuditFilter { pid: Some(pid), ..Default::default() })
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == AuditKind::Operator)
        .map(|r| format!("{} {}: {}", r.action, r.outcome, r.detail.unwrap_or_default()))
        .collect()
}

/// The grants `pid` holds, as `rights resource effect`.
fn caps(w: &World, pid: Pid) -> Vec<String> {
    w.kernel.caps(pid).unwrap().iter().map(|(g, _)| format!("{} {} {}", g.rights, g.resource, g.effect)).collect()
}

/// What request `id` says it asks for: `RIGHT RESOURCE`.
fn asked(w: &World, id: RequestId) -> String {
    match w.kernel.request(id).unwrap().kind {
        libos_kernel::ipc::RequestKind::Approval { resource, right } => format!("{right} {resource}"),
        other => panic!("request {id} is {other:?}"),
    }
}

/// Checks a decision refused because `part` of the stored call was edited:
/// the refusal is the error and an audit record, the request is cancelled,
/// nothing runs, the process hears why and goes on, and the chain verifies.
async fn check_refused_decision(w: &World, pid: Pid, id: RequestId, always: bool, part: &str) {
    let seq = park_record(w, pid);
    let grants = caps(w, pid);
    let message =
        format!("request {id} refused: {}; the request is cancelled and the call will not run", differs(part, seq));
    assert_eq!(approve(w, id, always).unwrap_err().to_string(), message);
    let check = format!("{}: deny (not what the audit log recorded)", asked(w, id));
    assert_eq!(operator_records(w, pid).last().cloned(), Some(format!("approve denied: {message} [{check}]")));
    assert_eq!(w.kernel.request(id).unwrap().status, libos_kernel::ipc::RequestStatus::Cancelled);
    assert_eq!(caps(w, pid), grants);
    w.run().await;
    let tool = &w.transcript(pid)[0];
    let tool = &tool[..tool.find(' ').unwrap()];
    assert_eq!(
        w.transcript(pid),
        vec![
            format!("{tool} denied: not run: request {id} was cancelled: {}", differs(part, seq)),
            "exit ok: process exited".to_string(),
        ]
    );
    assert!(w.kernel.audit_verify(None).unwrap().ok());
}

async fn parked_args_edited_before_approve_are_refused_and_never_run(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_echo(&w).await;
    w.tamper(&format!("UPDATE parked SET args = '{}' WHERE pid = {pid}", evil_args(&w)));
    check_refused_decision(&w, pid, id, false, "the parked call's arguments").await;
    assert!(!w.dir.path().join("pwned").exists());
}

async fn a_parked_tool_edited_before_approve_is_refused_and_never_run(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_listing(&w).await;
    w.tamper(&format!("UPDATE parked SET tool = 'read_file' WHERE pid = {pid}"));
    check_refused_decision(&w, pid, id, false, "the parked call's tool").await;
}

async fn a_request_resource_edited_before_approve_always_installs_no_grant(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_echo(&w).await;
    w.tamper(&format!("UPDATE requests SET resource = 'shell:sh' WHERE id = {id}"));
    check_refused_decision(&w, pid, id, true, "the resource and right asked for").await;
    assert!(!caps(&w, pid).iter().any(|g| g.contains("shell:sh")), "{:?}", caps(&w, pid));
}

async fn a_request_right_edited_before_approve_always_installs_no_grant(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_echo(&w).await;
    w.tamper(&format!("UPDATE requests SET wanted = 'write' WHERE id = {id}"));
    check_refused_decision(&w, pid, id, true, "the resource and right asked for").await;
    assert!(!caps(&w, pid).iter().any(|g| g.contains("shell:echo")), "{:?}", caps(&w, pid));
}

async fn a_request_tool_edited_before_approve_is_refused(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_listing(&w).await;
    w.tamper(&format!("UPDATE requests SET tool = 'read_file' WHERE id = {id}"));
    check_refused_decision(&w, pid, id, false, "the request's tool").await;
}

/// Checks an approved call refused when its lease resumes it, because
/// `part` was edited after the approval: nothing runs, the process hears
/// why, the refusal is the call's audit record, and the chain verifies.
async fn check_refused_dispatch(w: &World, pid: Pid, id: RequestId, tool: &str, part: &str) {
    let seq = park_record(w, pid);
    w.run().await;
    let content = format!("approved call not run: {}", differs(part, seq));
    assert_eq!(w.transcript(pid), vec![format!("{tool} denied: {content}"), "exit ok: process exited".to_string()]);
    let calls: Vec<(String, String, String)> = w
        .kernel
        .audit(&AuditFilter { pid: Some(pid), ..Default::default() })
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == AuditKind::Tool || r.kind == AuditKind::Effect)
        .map(|r| (r.action.to_string(), r.outcome.to_string(), r.detail.unwrap_or_default()))
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    // A denial, with the check of what the approval was for.
    let check = format!("{}: deny (not what the audit log recorded)", asked(w, id));
    assert_eq!(calls[1], (tool.to_string(), "denied".to_string(), format!("{content} [{check}]")));
    assert!(w.kernel.audit_verify(None).unwrap().ok());
}

async fn parked_args_edited_after_approve_are_refused_at_dispatch_and_never_run(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_echo(&w).await;
    approve(&w, id, false).unwrap();
    w.tamper(&format!("UPDATE parked SET args = '{}' WHERE pid = {pid}", evil_args(&w)));
    check_refused_dispatch(&w, pid, id, "shell", "the parked call's arguments").await;
    assert!(!w.dir.path().join("pwned").exists());
}

async fn a_parked_tool_edited_after_approve_is_refused_at_dispatch_and_never_run(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_listing(&w).await;
    approve(&w, id, false).unwrap();
    w.tamper(&format!("UPDATE parked SET tool = 'read_file' WHERE pid = {pid}"));
    check_refused_dispatch(&w, pid, id, "read_file", "the parked call's tool").await;
}

async fn a_request_resource_edited_after_approve_is_refused_at_dispatch(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_echo(&w).await;
    approve(&w, id, false).unwrap();
    w.tamper(&format!("UPDATE requests SET resource = 'shell:sh' WHERE id = {id}"));
    check_refused_dispatch(&w, pid, id, "shell", "the resource and right asked for").await;
}

async fn every_refused_decision_leaves_an_audit_record(backend: Backend) {
    let w = world_on(backend);
    let (pid, id) = parked_on_echo(&w).await;
    let err = |r: Result<(), KernelError>| r.unwrap_err().to_string();
    let answer = w.kernel.decide(id, &Verdict::Answer { text: "yes".into() }, &Actor::operator()).map(drop);
    assert_eq!(err(answer), format!("request {id} is an approval: approve or deny it, there is no question to answer"));
    approve(&w, id, false).unwrap();
    assert_eq!(err(approve(&w, id, true)), format!("request {id} was already approved"));
    assert_eq!(
        operator_records(&w, pid),
        vec![
            format!("spawn ok: spawned coder as pid {pid}"),
            format!("answer error: request {id} is an approval: approve or deny it, there is no question to answer"),
            format!("approve ok: approve request {id} of process {pid} (shell)"),
            format!("approve error: request {id} was already approved"),
        ]
    );
    // A request that does not exist names no process.
    assert_eq!(err(approve(&w, RequestId(999), false)), "no request with id 999");
    let last = w.kernel.audit(&AuditFilter::default()).unwrap().pop().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.action.as_str(), last.pid, last.outcome.as_str(), last.detail.as_deref()),
        ("operator", "approve", None, "error", Some("no request with id 999"))
    );
    assert!(w.kernel.audit_verify(None).unwrap().ok());
}

libos_kernel::on_both_stores!(async:
    parked_args_edited_before_approve_are_refused_and_never_run,
    a_parked_tool_edited_before_approve_is_refused_and_never_run,
    a_request_resource_edited_before_approve_always_installs_no_grant,
    a_request_right_edited_before_approve_always_installs_no_grant,
    a_request_tool_edited_before_approve_is_refused,
    parked_args_edited_after_approve_are_refused_at_dispatch_and_never_run,
    a_parked_tool_edited_after_approve_is_refused_at_dispatch_and_never_run,
    a_request_resource_edited_after_approve_is_refused_at_dispatch,
    every_refused_decision_leaves_an_audit_record,
);
