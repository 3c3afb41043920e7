//! Every refusal of authority is an audited denial with its check, whatever
//! the tool (issue 17, defect 3): memory objects outside one's view, waits
//! on and signals to strangers, grants a spawn drops or narrows, and calls
//! whose stored form no longer matches the audit chain.

use libos_kernel::audit::{AuditDecision, AuditKind};
use libos_kernel::{Actor, AuditFilter, Pid, RequestId, Verdict};
use serde_json::json;

use libos_kernel::testing::Backend;

use crate::world::{World, step, world_on};

/// `pid`'s audit records other than state changes, one line each: actor,
/// kind, action, outcome, decision, deciding grant and detail.
fn records(w: &World, pid: Pid) -> String {
    w.kernel
        .audit(&AuditFilter { pid: Some(pid), ..Default::default() })
        .unwrap()
        .into_iter()
        .filter(|r| r.kind != AuditKind::State)
        .map(|r| {
            format!(
                "{} {} {} {} decision={} grant={} | {}",
                r.actor,
                r.kind,
                r.action,
                r.outcome,
                r.decision.map_or("-", AuditDecision::as_str),
                r.grant.map_or("-".to_string(), |g| g.to_string()),
                r.detail.unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Regression: reading a memory object one holds no handle to was audited
/// as `error` with no decision; waiting on a stranger too. A stranger's
/// objects, waits and signals are denials, each with its check.
async fn a_strangers_objects_and_process_are_audited_denials(backend: Backend) {
    let w = world_on(backend);
    let victim = w.spawn(
        "orchestrator",
        "keep a secret",
        &[],
        vec![step("memory_write", json!({"name": "secret", "content": "s"})), step("receive", json!({}))],
    );
    w.run().await;
    let thief = w.spawn(
        "orchestrator",
        "take what is not yours",
        &[],
        vec![
            step("memory_read", json!({"object": 1})),
            step("memory_pin", json!({"oid": 1})),
            step("memory_share", json!({"oid": 1, "pid": victim.get(), "rights": "read"})),
            step("wait", json!({"pid": victim.get()})),
            step("signal", json!({"pid": victim.get(), "action": "kill"})),
            step("send", json!({"to": victim.get(), "body": "hi"})),
            step("exit", json!({"result": "nothing"})),
        ],
    );
    w.run().await;
    insta::assert_snapshot!(records(&w, thief));
}

/// A handle without `read` reads nothing, and sharing what one does not
/// hold (or more of it than one holds) is refused.
async fn a_handle_without_read_and_sharing_beyond_it_are_audited_denials(backend: Backend) {
    let w = world_on(backend);
    let parent = w.spawn(
        "orchestrator",
        "share a little",
        &[],
        vec![
            step("memory_write", json!({"name": "notes", "content": "n"})),
            step("spawn", json!({"image": "worker", "goal": "peek"})),
            step("memory_share", json!({"oid": 1, "pid": 2, "rights": "write"})),
            step("memory_share", json!({"oid": 7, "pid": 2, "rights": "read"})),
            step("send", json!({"to": 2, "body": "shared"})),
            step("wait", json!({"pid": "any"})),
            step("exit", json!({"result": "done"})),
        ],
    );
    w.model.script(
        "peek",
        vec![
            step("receive", json!({})),
            step("memory_read", json!({"object": 1})),
            step("exit", json!({"result": "x"})),
        ],
    );
    w.run().await;
    let child = Pid(parent.get() + 1);
    insta::assert_snapshot!(format!("{}\n--- child\n{}", records(&w, parent), records(&w, child)));
}

/// Regression: a spawn's dropped grants were only in its result. Each
/// grant a spawn drops or narrows is a denial of its own.
async fn grants_a_spawn_drops_or_narrows_are_audited_denials(backend: Backend) {
    let w = world_on(backend);
    std::fs::create_dir_all(w.dir.path().join("data")).unwrap();
    let parent = w.spawn(
        "orchestrator",
        "delegate",
        &["read fs:data/** delegable uses=3"],
        vec![
            step(
                "spawn",
                json!({"image": "worker", "goal": "work", "grants": ["read fs:data/** uses=5", "write fs:data/**", "read fs:docs/**"]}),
            ),
            step("exit", json!({"result": "delegated"})),
        ],
    );
    w.model.script("work", vec![step("exit", json!({"result": "worked"}))]);
    w.run().await;
    insta::assert_snapshot!(records(&w, parent));
}

/// Regression: a decision refused because the stored call no longer
/// matched its audit record was no denial with a check, and the approved
/// call refused at its resume was an `error`.
async fn calls_edited_behind_the_chain_are_audited_denials_at_decision_and_at_resume(backend: Backend) {
    let w = world_on(backend);
    let coder = |goal: &str| {
        w.spawn(
            "coder",
            goal,
            &[],
            vec![step("shell", json!({"argv": ["echo", "harmless"]})), step("exit", json!({"result": "done"}))],
        )
    };
    let before = coder("edited before the decision");
    let after = coder("edited after the decision");
    w.run().await;
    let request = |pid: Pid| -> RequestId { w.kernel.pending().unwrap().iter().find(|r| r.pid == pid).unwrap().id };
    let approve = |id| w.kernel.decide(id, &Verdict::Approve { always: false }, &Actor::operator()).map(drop);
    let evil = json!({"argv": ["sh", "-c", "touch pwned"]}).to_string();
    w.tamper(&format!("UPDATE parked SET args = '{evil}' WHERE pid = {before}"));
    approve(request(before)).unwrap_err();
    approve(request(after)).unwrap();
    w.tamper(&format!("UPDATE parked SET args = '{evil}' WHERE pid = {after}"));
    w.run().await;
    assert!(!w.dir.path().join("pwned").exists());
    insta::assert_snapshot!(format!("{}\n--- edited after\n{}", records(&w, before), records(&w, after)));
}

libos_kernel::on_both_stores!(async:
    a_strangers_objects_and_process_are_audited_denials,
    a_handle_without_read_and_sharing_beyond_it_are_audited_denials,
    grants_a_spawn_drops_or_narrows_are_audited_denials,
    calls_edited_behind_the_chain_are_audited_denials_at_decision_and_at_resume,
);
