//! The process tree and the process view: children indented and
//! collapsible, failed processes in view by default, a process's grants,
//! memory, children and the timeline of its quanta; kill asks first; an
//! action's error is shown by its buttons; buttons that cannot act are
//! disabled.

use libos_kernel::caps::{Resource, Right};
use libos_kernel::quantum::{Action, Next, ToolResultRecord};
use libos_kernel::syscall::Syscall;
use libos_kernel::{Actor, FailureKind, Outcome, Pid, ProcState, QuantumEnd};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::Browser;
use crate::support::{Call, Server, TOKEN};

fn run(s: &Server, pid: Pid, tool: &str, args: &str, action: Action) {
    let lease = s.lease(Some(pid));
    s.commit(&lease, Call { tool, args, rationale: "Next step.", checks: Vec::new(), action });
}

fn done(content: &str, next: Next) -> Action {
    Action::Done { result: ToolResultRecord { outcome: Outcome::Ok, content: content.into() }, next }
}

/// The left edge of a process's row in the tree.
fn left(pid: Pid) -> String {
    format!("return document.querySelector('#tree .proc[data-pid=\"{pid}\"]').getBoundingClientRect().left;")
}

const ROWS: &str =
    "return [...document.querySelectorAll('#tree .proc')].map(p => [Number(p.dataset.pid), p.dataset.state]);";

fn rows(list: &[(Pid, &str)]) -> Value {
    json!(list.iter().map(|(p, s)| json!([p.get(), s])).collect::<Vec<_>>())
}

async fn the_tree_nests_and_folds_and_the_process_view_shows_grants_memory_children_and_quanta() {
    let s = Server::start().await;
    let lead = s.spawn_image("orchestrator", "coordinate the release", None);
    let docs = s.spawn_image("worker", "build the docs", Some(lead));
    let tests = s.spawn_image("worker", "run the tests", Some(lead));
    let fixer = s.spawn_image("coder", "fix the flaky test", Some(lead));
    let logs = s.spawn_image("worker", "collect the logs", Some(fixer));
    let other = s.spawn_image("assistant", "an unrelated chore", None);
    run(&s, lead, "wait", &format!(r#"{{"pid":{fixer}}}"#), Action::Syscall(Syscall::Wait { target: Some(fixer) }));
    let lease = s.lease(Some(docs));
    let fail = QuantumEnd::Fail { kind: FailureKind::ModelError, error: "the endpoint answered 401".into() };
    s.kernel.end_quantum(&lease, None, fail).unwrap();
    run(
        &s,
        tests,
        "exit",
        r#"{"result":"all green"}"#,
        done("all green", Next::Exit { code: 0, result: "all green".into() }),
    );
    let memo =
        Syscall::MemoryWrite { name: "plan".into(), content: "1. reproduce\n2. fix".into(), kind: "note".into() };
    run(&s, fixer, "memory_write", r#"{"content":"1. reproduce\n2. fix","name":"plan"}"#, Action::Syscall(memo));
    let args = r#"{"content":"retry = 3\n","path":"tests/flaky.toml"}"#;
    s.ask(fixer, "write_file", args, Resource::fs("tests/flaky.toml"), Right::Write);

    let Some(b) = Browser::open(&format!("{}/#token={TOKEN}", s.base)).await else { return };
    // Failed processes are in view from the start; exited ones on request.
    let shown = b.until("the tree", ROWS, |v| v.as_array().is_some_and(|a| a.len() == 5)).await;
    let tree = [(lead, "waiting"), (docs, "failed"), (fixer, "waiting"), (logs, "runnable"), (other, "runnable")];
    assert_eq!(shown, rows(&tree));
    let (root, child, grandchild) = (b.js(&left(lead)).await, b.js(&left(fixer)).await, b.js(&left(logs)).await);
    assert!(root.as_f64() < child.as_f64() && child.as_f64() < grandchild.as_f64(), "{root} {child} {grandchild}");
    assert_eq!(b.js(&left(other)).await, root, "a second root is not indented");
    b.click("#showall").await;
    let all = [
        (lead, "waiting"),
        (docs, "failed"),
        (tests, "exited"),
        (fixer, "waiting"),
        (logs, "runnable"),
        (other, "runnable"),
    ];
    b.until("the exited process", ROWS, |v| *v == rows(&all)).await;
    b.click(&format!("#tree .proc[data-pid='{fixer}'] .twisty")).await;
    let folded = [(lead, "waiting"), (docs, "failed"), (tests, "exited"), (fixer, "waiting"), (other, "runnable")];
    b.until("the folded subtree", ROWS, |v| *v == rows(&folded)).await;
    let row =
        b.text_until("the folded row", &format!("#tree .proc[data-pid='{fixer}']"), |t| t.contains("1 hidden")).await;
    assert!(row.contains("fix the flaky test"), "{row}");
    b.fits("the process tree").await;
    b.screenshot("console", "header").await;
    b.screenshot("process-tree", "#procs").await;
    b.click(&format!("#tree .proc[data-pid='{fixer}'] .twisty")).await;
    b.until("the unfolded subtree", ROWS, |v| *v == rows(&all)).await;

    // The process view: grants, children, memory, and every quantum.
    b.click(&format!("#tree .proc[data-pid='{fixer}']")).await;
    let title = b.text_until("the process view", "#proctitle", |t| t.starts_with(&format!("pid {fixer}"))).await;
    assert_eq!(title, format!("pid {fixer} · coder · waiting(approval 1)"));
    let caps = b.text_until("the grants", "#caps", |t| t.contains("tests/flaky.toml")).await;
    for needle in ["read,write\tfs:**\tallow", "exec\tshell:*\task", "write\tfs:tests/flaky.toml\task"] {
        assert!(caps.contains(needle), "the grants lack {needle:?}:\n{caps}");
    }
    let children = b.text_until("the children", "#children", |t| t.contains("collect the logs")).await;
    assert_eq!(children, format!("{logs}\nrunnable\nworker · collect the logs"));
    b.text_until("the memory", "#memory", |t| t.contains("plan")).await;
    b.click("#memory summary").await;
    b.text_until("the memory object", "#memory pre", |t| t == "1. reproduce\n2. fix").await;
    // Issue 17, defect 5: the parked quantum shows its call and its wait.
    let quanta = b
        .until(
            "the timeline",
            "return [...document.querySelectorAll('#timeline .quantum')].map(q => q.innerText);",
            |v| v.as_array().is_some_and(|a| a.len() == 3),
        )
        .await;
    let last = quanta[2].as_str().unwrap();
    for needle in [
        "quantum 2",
        "says because the goal says so",
        "call write_file {\"content\":\"retry = 3\\n\",\"path\":\"tests/flaky.toml\"}",
        "decision ask (grant",
        "→ parked",
        "waits for approval 1 (open, asked",
    ] {
        assert!(last.contains(needle), "the parked quantum lacks {needle:?}:\n{last}");
    }
    assert!(quanta[1].as_str().unwrap().contains("call memory_write"), "{quanta}");
    assert!(quanta[0].as_str().unwrap().contains("human:operator spawn → ok"), "{quanta}");
    b.fits("the process view").await;
    b.screenshot("process-view", "#procview").await;

    // Kill asks first, says what else it takes, and does nothing until confirmed.
    b.click("#kill").await;
    let ask = b.text_until("the kill confirmation", "#killconfirm", |t| t.contains("Kill pid")).await;
    assert!(ask.contains(&format!("and its 1 live descendant ({logs})")), "{ask}");
    b.click("#killcancel").await;
    b.until("the confirmation gone", "return document.querySelector('#killconfirm').hidden;", |v| v == true).await;
    assert_eq!(s.kernel.process(fixer).unwrap().state.name(), "waiting");
    b.click("#kill").await;
    b.click("#killtree").await;
    b.type_into("#killreason", "stuck").await;
    b.click("#killconfirmbtn").await;
    b.text_until("the process killed", "#proctitle", |t| t.ends_with("killed")).await;
    for pid in [fixer, logs] {
        let by = Actor::operator();
        assert_eq!(s.kernel.process(pid).unwrap().state, ProcState::Killed { by, reason: "stuck".into() });
    }
    // An ended process's buttons cannot act, and say why.
    let buttons = "return ['pause', 'resume', 'kill', 'msgsend'].map(id => [document.getElementById(id).disabled, document.getElementById(id).title]);";
    let why = format!("process {fixer} has killed");
    let ended = b.until("the buttons disabled", buttons, |v| v[2][0] == true).await;
    assert_eq!(ended, json!([[true, why], [true, why], [true, why], [true, why]]));

    // A live process: what cannot act is disabled, an action's error shows by its buttons.
    b.click(&format!("#tree .proc[data-pid='{other}']")).await;
    b.text_until("the other process", "#proctitle", |t| t.starts_with(&format!("pid {other}"))).await;
    let live = b.until("the live buttons", buttons, |v| v[0][0] == false).await;
    assert_eq!(live, json!([[false, ""], [true, "it is not paused"], [false, ""], [false, ""]]));
    b.click("#msgsend").await;
    let error = b.text_until("the refusal", "#procerr", |t| !t.is_empty()).await;
    assert_eq!(error, "`text` is required");
    // Without the token nothing can act.
    b.js("sessionStorage.removeItem('libos-token'); location.reload(); return null;").await;
    b.until("the tree", ROWS, |v| v.as_array().is_some_and(|a| !a.is_empty())).await;
    b.click(&format!("#tree .proc[data-pid='{lead}']")).await;
    b.text_until("the process view", "#proctitle", |t| t.starts_with(&format!("pid {lead}"))).await;
    let read_only = b.until("the read-only buttons", buttons, |v| v[0][0] == true).await;
    let why = "read-only: needs the token `libos serve` printed";
    assert_eq!(read_only, json!([[true, why], [true, why], [true, why], [true, why]]));
}

libos_kernel::tests!(async_multi_thread:
    the_tree_nests_and_folds_and_the_process_view_shows_grants_memory_children_and_quanta,
);
