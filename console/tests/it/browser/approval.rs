//! The approval cards, on a real scheduler: the model's rationale, the
//! request's age, a write as its diff against the current file, a command
//! as its command line; buttons disabled without a token; an action's error
//! shown on its card; approving runs the call and the process finishes, all
//! from the live event stream.

use libos_kernel::Actor;
use libos_kernel::audit::KernelAction;
use std::sync::Arc;
use std::time::Duration;

use libos_kernel::Pid;
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::Browser;
use crate::support::{Server, TOKEN};

const SCRIPT: &str = r##"
[[agent]]
image = "orchestrator"
[[agent.step]]
say = "The draft is out of date: writing the report from the three summaries."
tool = "write_file"
args = { path = "report.txt", content = "# Report\nall good\n" }
[[agent.step]]
tool = "exit"
args = { result = "report written" }

[[agent]]
image = "coder"
[[agent.step]]
say = "Running the tests to see what fails."
tool = "shell"
args = { argv = ["sh", "-c", "cargo test 2>&1 | tail -n 5"] }
"##;

/// The card of the request for `pid`'s call.
fn card(pid: Pid) -> String {
    format!("[data-request][data-pid='{pid}']")
}

async fn an_operator_reads_the_call_as_it_will_act_approves_it_and_watches_the_process_finish() {
    let s = Server::start().await;
    std::fs::write(s.workspace.join("report.txt"), "# Report\ndraft\n").unwrap();
    let writer = s.spawn_image("orchestrator", "write the report", None);
    let tester = s.spawn_image("coder", "run the tests", None);
    let model = Arc::new(ScriptedModel::new("scripted", Script::parse("browser", SCRIPT).unwrap()));
    let env = quantum::env(s.kernel.clone(), ModelRouter::default().with_override(model), QuantumPolicy::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(async move {
        let config = SchedulerConfig { poll: Duration::from_millis(10), ..SchedulerConfig::default() };
        Scheduler::new(env, config).run(async move { drop(stopped.await) }).await.unwrap();
    });

    // Without the token the page reads, and its buttons say why they cannot act.
    let Some(b) = Browser::open(&format!("{}/", s.base)).await else { return };
    let write = b.text_until("the write's card", &card(writer), |t| t.contains("report.txt")).await;
    let tester_card = b.text_until("the command's card", &card(tester), |t| t.contains("cargo test")).await;
    let approve = format!("{} button.approve", card(writer));
    let disabled = b.js(&format!("const b = document.querySelector({approve:?}); return [b.disabled, b.title];")).await;
    assert_eq!(disabled, json!([true, "read-only: needs the token `libos serve` printed"]));

    // What the card says: who asks, why, since when, and the call as it will act.
    let who = format!("pid {writer} (orchestrator)");
    for needle in [
        who.as_str(),
        "asks: write fs:report.txt",
        "the model says",
        "The draft is out of date: writing the report from the three summaries.",
        "writes report.txt",
        "replaces 15 bytes of text with 18 bytes",
        "diff against the current file",
        "-draft",
        "+all good",
    ] {
        assert!(write.contains(needle), "the write's card lacks {needle:?}:\n{write}");
    }
    let age = b.js(&format!("return document.querySelector({:?}).innerText;", format!("{} .age", card(writer)))).await;
    let age = age.as_str().unwrap();
    assert!(age.starts_with(" · asked ") && age.ends_with(" s ago"), "{age}");
    for needle in
        ["Running the tests to see what fails.", "asks: exec shell:sh", "$ sh -c 'cargo test 2>&1 | tail -n 5'"]
    {
        assert!(tester_card.contains(needle), "the command's card lacks {needle:?}:\n{tester_card}");
    }
    b.fits("the pending approvals").await;
    b.screenshot("approval-card", "#pendingsec").await;

    // A wrong token: the action fails, and the card says so where it was clicked.
    b.js("sessionStorage.setItem('libos-token', 'not-the-token'); location.reload(); return null;").await;
    b.text_until("the card again", &card(tester), |t| t.contains("cargo test")).await;
    b.click(&format!("{} button.deny", card(tester))).await;
    let error =
        b.text_until("the refusal on the card", &format!("{} .action-error", card(tester)), |t| !t.is_empty()).await;
    let refused = s.client.post(format!("{}/api/requests/1/deny", s.base)).bearer_auth("not-the-token").send().await;
    let refused: serde_json::Value = refused.unwrap().json().await.unwrap();
    assert_eq!(error, refused["error"]["message"].as_str().unwrap());
    assert_eq!(s.kernel.pending().unwrap().len(), 2, "nothing was decided");

    // With the token, approving runs the call as parked; the tree follows.
    b.js(&format!("sessionStorage.setItem('libos-token', '{TOKEN}'); location.reload(); return null;")).await;
    b.text_until("the card again", &card(writer), |t| t.contains("report.txt")).await;
    b.click(&approve).await;
    b.click("#showall").await;
    let state =
        format!("const p = document.querySelector('.proc[data-pid=\"{writer}\"]'); return p ? p.dataset.state : null;");
    b.until("the process exiting", &state, |v| v == "exited").await;
    let actions = b
        .until(
            "the approval in the audit view",
            "return [...document.querySelectorAll('#audit tr')].map(r => r.children[3].textContent);",
            |v| v.as_array().is_some_and(|a| a.iter().any(|x| x == "approve") && a.iter().any(|x| x == "exit")),
        )
        .await;
    assert!(actions.as_array().unwrap().iter().any(|x| x == "write_file"), "{actions}");
    let left = b
        .until("the write's card gone", "return document.querySelectorAll('[data-request]').length;", |v| v == 1)
        .await;
    assert_eq!(left, json!(1));
    assert_eq!(std::fs::read_to_string(s.workspace.join("report.txt")).unwrap(), "# Report\nall good\n");

    drop(b);
    let _ = stop.send(());
    scheduler.await.unwrap();
    // The console's actions are in the log as the operator's: the approval,
    // and the denial refused for want of the token is no action at all.
    let by_operator: Vec<String> = s
        .kernel
        .audit(&libos_kernel::AuditFilter::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.actor == Actor::operator() && !r.action.is(KernelAction::Spawn))
        .map(|r| r.action.to_string())
        .collect();
    assert_eq!(by_operator, ["approve"]);
}

libos_kernel::tests!(async_multi_thread:
    an_operator_reads_the_call_as_it_will_act_approves_it_and_watches_the_process_finish,
);
