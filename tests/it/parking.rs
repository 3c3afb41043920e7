//! Parking end to end: approvals, questions, children, messages and timers,
//! through the kernel and runtime as an embedding program drives them.

use libos_kernel::audit::KernelAction;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libos_kernel::caps::GrantSpec;
use libos_kernel::ipc::{MessageKind, NewMessage};
use libos_kernel::{Actor, KernelError, Pid, ProcState, RequestId, Verdict, WaitOn};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig};
use pretty_assertions::assert_eq;
use serde_json::json;

use libos_kernel::testing::Backend;

use crate::world::{Step, World, step, world, world_on};

fn approve(w: &World, id: RequestId, always: bool) -> Result<(), KernelError> {
    w.kernel.decide(id, &Verdict::Approve { always }, &Actor::operator()).map(drop)
}

async fn an_approved_call_runs_exactly_as_parked_once_without_a_new_model_call(backend: Backend) {
    let w = world_on(backend);
    let pid = w.spawn(
        "assistant",
        "write the report",
        &["write fs:** ask"],
        vec![
            step("write_file", json!({"path": "report.txt", "content": "v1"})),
            step("exit", json!({"result": "done"})),
        ],
    );
    w.run().await;
    let id = w.only_request();
    assert_eq!(w.state(pid), ProcState::Waiting { on: WaitOn::Human(id) });
    let req = w.kernel.request(id).unwrap();
    assert_eq!((req.tool.as_str(), req.args.as_str()), ("write_file", r#"{"content":"v1","path":"report.txt"}"#));
    assert_eq!((w.file("report.txt"), w.model_calls(pid)), (None, 1));

    approve(&w, id, false).unwrap();
    w.run().await;
    assert_eq!(w.file("report.txt").as_deref(), Some("v1"));
    // One more model call, for `exit`: the approved write needed none.
    assert_eq!(w.model_calls(pid), 2);
    assert_eq!(w.transcript(pid), vec!["write_file ok: wrote 2 bytes to `report.txt`", "exit ok: process exited"]);
    let decisions: Vec<(String, Option<String>, String)> = w
        .kernel
        .audit(&libos_kernel::AuditFilter { pid: Some(pid), ..Default::default() })
        .unwrap()
        .into_iter()
        .filter(|r| r.action.is_tool("write_file") || r.action.is(KernelAction::Approve))
        .map(|r| (r.action.to_string(), r.decision.map(|d| d.to_string()), r.outcome.to_string()))
        .collect();
    assert_eq!(
        decisions,
        vec![
            ("write_file".into(), Some("ask".into()), "parked".into()),
            ("approve".into(), None, "ok".into()),
            ("write_file".into(), None, "pending".into()),
            ("write_file".into(), Some("approved".into()), "ok".into()),
        ]
    );
}

async fn approve_always_installs_an_exact_grant_so_the_same_call_never_asks_again(backend: Backend) {
    let w = world_on(backend);
    let write = || step("write_file", json!({"path": "log.txt", "content": "x"}));
    let pid = w.spawn(
        "assistant",
        "log twice",
        &["write fs:** ask"],
        vec![write(), write(), step("exit", json!({"result": "ok"}))],
    );
    w.run().await;
    approve(&w, w.only_request(), true).unwrap();
    w.run().await;
    assert_eq!(w.kernel.pending().unwrap(), vec![]);
    assert_eq!(w.state(pid), ProcState::Exited { code: 0, result: "ok".into() });
    let caps: Vec<String> = w
        .kernel
        .caps(pid)
        .unwrap()
        .iter()
        .map(|(g, s)| format!("{} {} {}", g.rights, g.resource, s.as_str()))
        .collect();
    assert!(caps.contains(&"write fs:log.txt live".to_string()), "{caps:?}");
}

async fn approval_bypass_attempts_are_refused_with_clear_errors(backend: Backend) {
    let w = world_on(backend);
    let parked = |goal: &str| {
        w.spawn(
            "assistant",
            goal,
            &["write fs:** ask"],
            vec![
                step("write_file", json!({"path": format!("{goal}.txt"), "content": "x"})),
                step("exit", json!({"result": "ok"})),
            ],
        )
    };
    let (a, b, c, d) = (parked("a"), parked("b"), parked("c"), parked("d"));
    w.run().await;
    let ids: HashMap<Pid, RequestId> = w.kernel.pending().unwrap().iter().map(|r| (r.pid, r.id)).collect();
    let err = |r: Result<(), KernelError>| r.unwrap_err().to_string();

    // Decided twice.
    approve(&w, ids[&a], false).unwrap();
    assert_eq!(err(approve(&w, ids[&a], false)), format!("request {} was already approved", ids[&a]));
    // Approved after its process was killed.
    w.kernel.kill(b, Actor::operator(), "stop").unwrap();
    assert_eq!(err(approve(&w, ids[&b], false)), format!("request {} was already cancelled", ids[&b]));
    // A request id that does not exist.
    assert_eq!(err(approve(&w, RequestId(999), false)), "no request with id 999");
    // The stored call altered behind libos's back.
    w.tamper(&format!(
        r#"UPDATE requests SET args = '{{"content":"evil","path":"c.txt"}}', args_sha256 = '{}' WHERE id = {}"#,
        libos_kernel::audit::sha256_hex(br#"{"content":"evil","path":"c.txt"}"#),
        ids[&c].get()
    ));
    assert_eq!(
        err(approve(&w, ids[&c], false)),
        format!(
            "request {} refused: the stored call differs from the call recorded in the audit log (record {}) in the \
             request's arguments; the request is cancelled and the call will not run",
            ids[&c],
            w.kernel
                .audit(&libos_kernel::AuditFilter {
                    pid: Some(c),
                    outcome: Some(libos_kernel::Outcome::Parked),
                    ..Default::default()
                })
                .unwrap()[0]
                .seq
        )
    );
    // A deny added while it was parked still wins over the approval.
    w.kernel.grant(d, &GrantSpec::parse("write fs:d.txt deny").unwrap(), &Actor::operator()).unwrap();
    approve(&w, ids[&d], false).unwrap();
    w.run().await;
    assert_eq!(w.file("d.txt"), None);
    assert!(
        w.transcript(d)[0].starts_with("write_file denied: permission denied: write fs:d.txt (grant"),
        "{:?}",
        w.transcript(d)
    );
    assert_eq!((w.file("a.txt").as_deref(), w.file("c.txt")), (Some("x"), None));
}

async fn a_revoked_grant_is_never_used_again_even_for_an_approved_call(backend: Backend) {
    let w = world_on(backend);
    let pid = w.spawn(
        "worker",
        "read twice",
        &["read fs:** ask"],
        vec![step("read_file", json!({"path": "notes.txt"})), step("exit", json!({"result": "ok"}))],
    );
    std::fs::write(w.dir.path().join("notes.txt"), "secret").unwrap();
    w.run().await;
    let id = w.only_request();
    let grant = w.kernel.caps(pid).unwrap()[0].0.id;
    w.kernel.revoke(grant, &Actor::operator()).unwrap();
    approve(&w, id, false).unwrap();
    w.run().await;
    assert_eq!(
        w.transcript(pid)[0],
        "read_file denied: permission denied: read fs:notes.txt (no grant of yours covers it)"
    );
}

async fn a_child_gets_only_the_grants_its_parent_can_delegate(backend: Backend) {
    let w = world_on(backend);
    let parent = w.spawn(
        "orchestrator",
        "split the work",
        &[],
        vec![
            step(
                "spawn",
                json!({"image": "worker", "goal": "read data", "grants": [
                    "read fs:data/**",
                    "write fs:data/**",
                    {"resource": "fs:**", "rights": ["read"], "delegable": true},
                    "read fs:data/** ask uses=1"
                ]}),
            ),
            step("exit", json!({"result": "ok"})),
        ],
    );
    w.model.script("read data", vec![step("exit", json!({"result": "nothing"}))]);
    w.run().await;
    let child = Pid(parent.get() + 1);
    let parent_read = w.kernel.caps(parent).unwrap()[0].0.id;
    insta::assert_snapshot!(
        w.transcript(parent)[0]
            .replace(&child.to_string(), "<child>")
            .replace(&format!("grant {parent_read}"), "grant <parent>")
    );
    let caps: Vec<String> = w
        .kernel
        .caps(child)
        .unwrap()
        .iter()
        .map(|(g, _)| format!("{} {} {} from {:?}", g.rights, g.resource, g.effect, g.parent == Some(parent_read)))
        .collect();
    assert_eq!(
        caps,
        vec!["read fs:data/** allow from true", "read fs:** allow from true", "read fs:data/** ask from true"]
    );
}

// SQLite only: a PostgreSQL store has no files in the workspace.
async fn file_tools_never_reach_the_store_even_with_the_whole_workspace_granted() {
    let w = world();
    let pid = w.spawn(
        "assistant",
        "snoop",
        &["read,write,delete fs:**"],
        vec![
            step("read_file", json!({"path": ".libos/libos.db"})),
            step("write_file", json!({"path": ".libos/libos.db-wal", "content": "x"})),
            step("delete_file", json!({"path": ".libos/libos.db"})),
            step("exit", json!({"result": "ok"})),
        ],
    );
    w.run().await;
    assert_eq!(
        w.transcript(pid)[..3],
        [
            "read_file denied: permission denied: path `.libos/libos.db` is libos's own state and is never accessible to tools",
            "write_file denied: permission denied: path `.libos/libos.db-wal` is libos's own state and is never accessible to tools",
            "delete_file denied: permission denied: path `.libos/libos.db` is libos's own state and is never accessible to tools",
        ]
    );
    assert!(w.kernel.audit_verify(None).unwrap().ok());
}

async fn a_message_posted_between_the_prompt_and_the_park_wakes_the_receiver(backend: Backend) {
    let w = world_on(backend);
    let kernel = w.kernel.clone();
    let pid = Arc::new(Mutex::new(None::<Pid>));
    let target = pid.clone();
    let receive = Step {
        tool: "receive",
        args: json!({}),
        // The inbox was empty when the prompt was built; the message lands
        // before the receive commits.
        before: Some(Box::new(move || {
            let to = target.lock().unwrap().unwrap();
            let m = NewMessage {
                to,
                body: "hello".into(),
                kind: MessageKind::Normal,
                channel: None,
                correlation_id: None,
                reply_to: None,
            };
            kernel.send(&m, &Actor::operator()).unwrap();
        })),
    };
    let p = w.spawn("worker", "listen", &[], vec![receive, step("exit", json!({"result": "ok"}))]);
    *pid.lock().unwrap() = Some(p);
    w.run().await;
    assert_eq!(w.state(p), ProcState::Exited { code: 0, result: "ok".into() });
    assert!(w.transcript(p)[0].starts_with("receive ok: message 1 from human:"), "{:?}", w.transcript(p));
}

async fn a_child_that_ends_while_its_parent_enters_wait_is_not_missed(backend: Backend) {
    let w = world_on(backend);
    let kernel = w.kernel.clone();
    let parent = Arc::new(Mutex::new(None::<Pid>));
    let p2 = parent.clone();
    let wait = Step {
        tool: "wait",
        args: json!({"pid": "any"}),
        before: Some(Box::new(move || {
            let me = p2.lock().unwrap().unwrap();
            let child = kernel.children(me).unwrap()[0];
            kernel.kill(child, Actor::operator(), "ended during the parent's model call").unwrap();
        })),
    };
    let p = w.spawn(
        "orchestrator",
        "spawn and wait",
        &[],
        vec![
            step("spawn", json!({"image": "worker", "goal": "never runs"})),
            wait,
            step("exit", json!({"result": "ok"})),
        ],
    );
    *parent.lock().unwrap() = Some(p);
    w.model.script("never runs", vec![step("sleep", json!({"seconds": 3600}))]);
    // Run the parent alone: the child must not get a quantum first.
    let router = ModelRouter::default().with_override(w.model.clone());
    let env = quantum::env(w.kernel.clone(), router, QuantumPolicy::default());
    let owner = libos_kernel::SchedulerId("test".into());
    for _ in 0..3 {
        let lease = w.kernel.lease(&owner, std::time::Duration::from_secs(60), 1, &[]).unwrap().pop().unwrap();
        assert_eq!(lease.pid, p);
        quantum::run(env.clone(), lease).await.unwrap();
    }
    assert_eq!(w.state(p), ProcState::Exited { code: 0, result: "ok".into() });
    let t = w.transcript(p);
    assert!(t[1].starts_with("wait ok: child 2 (worker) was killed by human:"), "{t:?}");
}

async fn workers_report_to_their_parent_without_a_grant_but_not_to_strangers(backend: Backend) {
    let w = world_on(backend);
    let stranger = w.spawn("worker", "stranger", &[], vec![step("receive", json!({}))]);
    let parent = w.spawn(
        "orchestrator",
        "collect",
        &[],
        vec![
            step("spawn", json!({"image": "worker", "goal": "report"})),
            step("receive", json!({})),
            step("wait", json!({"pid": "any"})),
            step("exit", json!({"result": "collected"})),
        ],
    );
    w.model.script(
        "report",
        vec![
            step("send", json!({"to": stranger.get(), "body": "psst"})),
            step("send", json!({"to": parent.get(), "body": "found 3 files", "channel": "reports"})),
            step("exit", json!({"result": "reported"})),
        ],
    );
    w.run().await;
    let child = Pid(parent.get() + 1);
    assert_eq!(w.kernel.process(child).unwrap().image, "worker");
    assert_eq!(
        w.transcript(child)[..2],
        [
            format!("send denied: permission denied: send message:{stranger} (no grant of yours covers it)"),
            format!("send ok: sent message 1 to process {parent}"),
        ]
    );
    let t = w.transcript(parent);
    assert_eq!(t[1], format!("receive ok: message 1 from pid:{child} channel=reports: found 3 files"));
    assert_eq!(t[2], format!("wait ok: child {child} (worker) exited(0): reported"));
    assert_eq!(w.state(stranger), ProcState::Waiting { on: WaitOn::Message(Default::default()) });
}

async fn an_interrupt_wakes_a_sleeper_but_never_a_process_waiting_for_a_human(backend: Backend) {
    let w = world_on(backend);
    let sleeper = w.spawn(
        "assistant",
        "nap",
        &[],
        vec![step("ask_human", json!({"question": "may I nap?"})), step("exit", json!({"result": "ok"}))],
    );
    w.run().await;
    let id = w.only_request();
    let interrupt = |to: Pid| NewMessage {
        to,
        body: "wake up".into(),
        kind: MessageKind::Interrupt,
        channel: None,
        correlation_id: None,
        reply_to: None,
    };
    w.kernel.send(&interrupt(sleeper), &Actor::operator()).unwrap();
    assert_eq!(w.state(sleeper), ProcState::Waiting { on: WaitOn::Human(id) });
    w.kernel.decide(id, &Verdict::Answer { text: "yes".into() }, &Actor::operator()).unwrap();
    assert_eq!(w.transcript(sleeper), vec!["ask_human ok: human:operator answered: yes"]);

    let napper = w.spawn(
        "orchestrator",
        "sleep long",
        &[],
        vec![step("sleep", json!({"seconds": 3600})), step("exit", json!({"result": "woken"}))],
    );
    w.run().await;
    assert!(matches!(w.state(napper), ProcState::Waiting { on: WaitOn::Timer(_) }));
    w.kernel.send(&interrupt(napper), &Actor::operator()).unwrap();
    assert_eq!(w.state(napper), ProcState::Runnable { not_before: None });
    w.run().await;
    assert_eq!(w.state(napper), ProcState::Exited { code: 0, result: "woken".into() });
}

async fn a_paused_approval_wait_resumes_as_the_same_wait_and_nothing_is_dispatched(backend: Backend) {
    let w = world_on(backend);
    let pid = w.spawn(
        "assistant",
        "write",
        &["write fs:** ask"],
        vec![step("write_file", json!({"path": "p.txt", "content": "x"})), step("exit", json!({"result": "ok"}))],
    );
    w.run().await;
    let id = w.only_request();
    let waiting = ProcState::Waiting { on: WaitOn::Human(id) };
    assert_eq!(w.kernel.pause(pid, Actor::operator()).unwrap(), ProcState::Paused { was: Box::new(waiting.clone()) });
    w.run().await;
    assert_eq!(w.kernel.resume(pid, Actor::operator()).unwrap(), waiting);
    assert_eq!((w.file("p.txt"), w.model_calls(pid)), (None, 1));
    approve(&w, id, false).unwrap();
    w.run().await;
    assert_eq!(w.file("p.txt").as_deref(), Some("x"));
}

async fn a_sleeper_wakes_when_its_timer_is_due_under_a_running_scheduler(backend: Backend) {
    let w = world_on(backend);
    let pid = w.spawn(
        "orchestrator",
        "nap briefly",
        &[],
        vec![step("sleep", json!({"seconds": 0.05})), step("exit", json!({"result": "rested"}))],
    );
    let kernel = w.kernel.clone();
    let ended = async move {
        while !kernel.process(pid).unwrap().state.is_terminal() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let router = ModelRouter::default().with_override(w.model.clone());
    let env = quantum::env(w.kernel.clone(), router, QuantumPolicy::default());
    Scheduler::new(env, SchedulerConfig::default()).run(ended).await.unwrap();
    assert_eq!(w.transcript(pid), vec!["sleep ok: slept until the deadline", "exit ok: process exited"]);
}

async fn a_counted_grant_and_the_grants_derived_from_it_share_one_counter(backend: Backend) {
    let w = world_on(backend);
    let read = || step("read_file", json!({"path": "data/a.txt"}));
    std::fs::create_dir_all(w.dir.path().join("data")).unwrap();
    std::fs::write(w.dir.path().join("data/a.txt"), "a").unwrap();
    let parent = w.spawn(
        "orchestrator",
        "count",
        &["read fs:data/** delegable uses=3"],
        vec![
            read(),
            step("spawn", json!({"image": "worker", "goal": "use the rest", "grants": ["read fs:data/** uses=5"]})),
            step("wait", json!({"pid": "any"})),
            read(),
            step("exit", json!({"result": "ok"})),
        ],
    );
    w.model.script("use the rest", vec![read(), read(), read(), step("exit", json!({"result": "ok"}))]);
    w.run().await;
    let child = Pid(parent.get() + 1);
    let outcomes = |pid| w.transcript(pid).iter().map(|l| l.split(':').next().unwrap().to_string()).collect::<Vec<_>>();
    // 3 uses in all: one by the parent, two by the child (its own uses=5 was
    // clamped to the 2 left), then the child is denied. The used-up grant
    // matches nothing, so for the parent its image's `read fs:**` decides again.
    assert_eq!(outcomes(child), vec!["read_file ok", "read_file ok", "read_file denied", "exit ok"]);
    assert_eq!(outcomes(parent), vec!["read_file ok", "spawn ok", "wait ok", "read_file ok", "exit ok"]);
    let parent_counted = w.kernel.caps(parent).unwrap().into_iter().find(|(g, _)| g.uses_left.is_some()).unwrap();
    assert_eq!((parent_counted.0.uses_left, parent_counted.1.as_str()), (Some(0), "used up"));
}

async fn a_parent_signals_and_lists_its_own_children_but_not_strangers(backend: Backend) {
    let w = world_on(backend);
    let stranger = w.spawn("worker", "a stranger", &[], vec![step("receive", json!({}))]);
    let parent = w.spawn(
        "orchestrator",
        "manage",
        &[],
        vec![
            step("spawn", json!({"image": "worker", "goal": "wait for orders"})),
            step("signal", json!({"pid": parent_plus(1), "action": "pause"})),
            step("children", json!({})),
            step("signal", json!({"pid": stranger.get(), "action": "kill"})),
            step("signal", json!({"pid": parent_plus(1), "action": "kill"})),
            step("exit", json!({"result": "done"})),
        ],
    );
    w.model.script("wait for orders", vec![step("receive", json!({}))]);
    w.run().await;
    let child = Pid(parent.get() + 1);
    let t = w.transcript(parent);
    // The child may or may not have parked in `receive` before the pause.
    assert!(t[1].starts_with(&format!("signal ok: process {child} (worker) is now paused (was ")), "{t:?}");
    assert!(t[2].starts_with(&format!("children ok: pid {child} (worker): paused (was ")), "{t:?}");
    assert!(t[2].ends_with(" - wait for orders"), "{t:?}");
    assert_eq!(
        t[3],
        format!("signal denied: permission denied: signal process:{stranger} (no grant of yours covers it)")
    );
    assert_eq!(t[4], format!("signal ok: process {child} (worker) is now killed(by pid:{parent})"));
    assert!(matches!(w.state(stranger), ProcState::Waiting { .. }));
}

/// The pid the next spawn in a fresh world gets, relative to the parent
/// about to be spawned (pids are sequential per store).
fn parent_plus(n: i64) -> i64 {
    2 + n
}

async fn a_coder_runs_programs_only_after_approval_without_a_shell_and_within_its_time_limit(backend: Backend) {
    let w = world_on(backend);
    let pid = w.spawn(
        "coder",
        "inspect the build",
        &["exec shell:sleep"],
        vec![
            step("shell", json!({"argv": ["echo", "hello", "$HOME", "*"]})),
            step("shell", json!({"argv": ["sleep", "5"], "timeout_s": 1})),
            step("shell", json!({"argv": ["/bin/echo", "x"]})),
            step("exit", json!({"result": "inspected"})),
        ],
    );
    w.run().await;
    // `echo` is not allowed outright: it asks.
    let req = w.kernel.request(w.only_request()).unwrap();
    assert_eq!((req.tool.as_str(), req.args.as_str()), ("shell", r#"{"argv":["echo","hello","$HOME","*"]}"#));
    approve(&w, req.id, false).unwrap();
    w.run().await;
    let t = w.transcript(pid);
    // No shell: `$HOME` and `*` reach the program as written.
    assert_eq!(t[0], "shell ok: exit status 0\nstdout:\nhello $HOME *\n\nstderr:\n");
    assert_eq!(
        t[1],
        "shell error: `sleep` was killed, with everything it started, after its 1 s time limit\nstdout:\n\nstderr:\n"
    );
    assert_eq!(w.state(pid), ProcState::Exited { code: 0, result: "inspected".into() });
    // A path as argv[0] is refused before anything runs (and repaired by the model).
    let rejected: Vec<String> = w
        .kernel
        .audit(&libos_kernel::AuditFilter {
            pid: Some(pid),
            outcome: Some(libos_kernel::Outcome::Rejected),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.detail.unwrap_or_default())
        .collect();
    assert_eq!(
        rejected,
        vec!["invalid arguments for `shell`: argv[0] must be a program name found on PATH, not `/bin/echo`"]
    );
}

libos_kernel::on_both_stores!(async:
    an_approved_call_runs_exactly_as_parked_once_without_a_new_model_call,
    approve_always_installs_an_exact_grant_so_the_same_call_never_asks_again,
    approval_bypass_attempts_are_refused_with_clear_errors,
    a_revoked_grant_is_never_used_again_even_for_an_approved_call,
    a_child_gets_only_the_grants_its_parent_can_delegate,
    a_message_posted_between_the_prompt_and_the_park_wakes_the_receiver,
    a_child_that_ends_while_its_parent_enters_wait_is_not_missed,
    workers_report_to_their_parent_without_a_grant_but_not_to_strangers,
    an_interrupt_wakes_a_sleeper_but_never_a_process_waiting_for_a_human,
    a_paused_approval_wait_resumes_as_the_same_wait_and_nothing_is_dispatched,
    a_sleeper_wakes_when_its_timer_is_due_under_a_running_scheduler,
    a_counted_grant_and_the_grants_derived_from_it_share_one_counter,
    a_parent_signals_and_lists_its_own_children_but_not_strangers,
    a_coder_runs_programs_only_after_approval_without_a_shell_and_within_its_time_limit,
);

libos_kernel::tests!(async:
    file_tools_never_reach_the_store_even_with_the_whole_workspace_granted,
);
