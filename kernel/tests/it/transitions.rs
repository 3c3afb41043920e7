//! The state machine, and the kernel operations that drive it.

use libos_kernel::audit::{AuditAction, KernelAction};
use libos_kernel::state::{Event, LeaseInfo, transition};
use libos_kernel::{
    Actor, AuditFilter, FailureKind, KernelError, Next, Pid, ProcState, ProcessFilter, SchedulerId, Timestamp,
};
use pretty_assertions::assert_eq;

use libos_kernel::testing::Backend;

use crate::support::*;

fn lease_info() -> LeaseInfo {
    LeaseInfo { owner: SchedulerId("s".into()), expires_at: Timestamp(5), quantum: 1 }
}

fn states() -> Vec<ProcState> {
    vec![
        ProcState::Runnable { not_before: None },
        ProcState::Running { lease: lease_info() },
        ProcState::Exited { code: 0, result: "r".into() },
        ProcState::Failed { kind: FailureKind::ModelError, error: "e".into() },
        ProcState::Killed { by: Actor::operator(), reason: "k".into() },
    ]
}

fn events() -> Vec<Event> {
    vec![
        Event::Lease(lease_info()),
        Event::Yield { not_before: None },
        Event::LeaseExpired,
        Event::Release,
        Event::Exit { code: 0, result: "r".into() },
        Event::Fail { kind: FailureKind::InvalidOutput, error: "e".into() },
        Event::Kill { by: Actor::operator(), reason: "k".into() },
    ]
}

fn every_state_event_pair_has_one_defined_outcome() {
    // Rows: state; columns in event order lease, yield, expired, release, exit, fail, kill.
    let compact: Vec<String> = states()
        .iter()
        .map(|s| {
            let row: Vec<String> = events()
                .into_iter()
                .map(|e| transition(Pid(1), s, e).map(|t| t.next.name().to_string()).unwrap_or("-".into()))
                .collect();
            format!("{}: {}", s.name(), row.join(" "))
        })
        .collect();
    assert_eq!(
        compact,
        vec![
            "runnable: running - - - - failed killed",
            "running: - runnable runnable runnable exited failed killed",
            "exited: - - - - - - -",
            "failed: - - - - - - -",
            "killed: - - - - - - -",
        ]
    );
}

fn a_transition_produces_its_audit_record() {
    let t =
        transition(Pid(7), &ProcState::Running { lease: lease_info() }, Event::Exit { code: 0, result: "done".into() })
            .unwrap();
    assert_eq!(t.next, ProcState::Exited { code: 0, result: "done".into() });
    assert_eq!(t.record.actor, Actor::Process(Pid(7)));
    assert_eq!(t.record.action, AuditAction::Kernel(KernelAction::Exit));
    assert_eq!(t.record.args, serde_json::json!({"from": "running", "to": "exited", "code": 0}));
    assert_eq!(t.record.detail.as_deref(), Some("running -> exited"));
}

fn pids_are_monotonic_and_never_reused(backend: Backend) {
    let store = kernel_on(backend);
    let kernel = &store.kernel;
    let pids: Vec<Pid> = (0..3).map(|i| spawn(kernel, &format!("goal {i}"))).collect();
    assert_eq!(pids, vec![Pid(1), Pid(2), Pid(3)]);
    kernel.kill(Pid(3), Actor::operator(), "bye").unwrap();
    assert_eq!(spawn(kernel, "later"), Pid(4));
}

fn a_quantum_commits_state_transcript_usage_and_audit_together(backend: Backend) {
    let store = kernel_on(backend);
    let kernel = &store.kernel;
    let pid = spawn(kernel, "g");
    let lease = lease_one(kernel);
    assert_eq!(lease.quantum, 1);
    let receipt = kernel.commit_quantum(&lease, &commit("now", "{}", Next::Continue)).unwrap();
    assert_eq!(receipt.state, ProcState::Runnable { not_before: None });
    let p = kernel.process(pid).unwrap();
    assert_eq!((p.usage.quanta, p.usage.model_calls, p.usage.tool_calls, p.usage.tokens_in), (1, 1, 1, 10));
    assert_eq!(p.generation.0, 3, "spawn is generation 1, lease and commit bump it");
    let (entries, total) = kernel.transcript(pid, None).unwrap();
    assert_eq!((entries.len(), total), (1, 1));
    let actions: Vec<String> = kernel
        .audit(&AuditFilter::default())
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {} {}", r.actor, r.kind, r.action, r.outcome))
        .collect();
    assert_eq!(
        actions,
        vec!["human:operator operator spawn ok", "kernel state lease ok", "pid:1 tool now ok", "kernel state yield ok",]
    );
}

fn a_killed_process_refuses_the_stale_commit_and_nothing_lands(backend: Backend) {
    let store = kernel_on(backend);
    let kernel = &store.kernel;
    let pid = spawn(kernel, "g");
    let lease = lease_one(kernel);
    kernel.kill(pid, Actor::operator(), "stop").unwrap();
    let before = kernel.audit(&AuditFilter::default()).unwrap().len();
    let err = kernel.commit_quantum(&lease, &commit("now", "{}", Next::Continue)).unwrap_err();
    assert!(matches!(err, KernelError::Stale { .. }), "{err:?}");
    assert_eq!(kernel.audit(&AuditFilter::default()).unwrap().len(), before);
    assert_eq!(kernel.transcript(pid, None).unwrap().1, 0);
    assert_eq!(kernel.process(pid).unwrap().state, ProcState::Killed { by: Actor::operator(), reason: "stop".into() });
}

fn killing_a_finished_process_is_refused_with_a_clear_error(backend: Backend) {
    let store = kernel_on(backend);
    let kernel = &store.kernel;
    let pid = spawn(kernel, "g");
    let lease = lease_one(kernel);
    kernel
        .commit_quantum(&lease, &commit("exit", r#"{"result":"ok"}"#, Next::Exit { code: 0, result: "ok".into() }))
        .unwrap();
    let err = kernel.kill(pid, Actor::operator(), "late").unwrap_err();
    assert_eq!(err.to_string(), "process 1 is exited: cannot kill");
    assert_eq!(kernel.kill(Pid(99), Actor::operator(), "x").unwrap_err().to_string(), "no process with pid 99");
}

fn leases_are_round_robin_and_skip_excluded_and_backed_off_processes(backend: Backend) {
    let (store, clock) = kernel_on_clock(backend);
    let kernel = &store.kernel;
    let pids: Vec<Pid> = (0..3).map(|i| spawn(kernel, &format!("g{i}"))).collect();
    let mut order = Vec::new();
    for _ in 0..6 {
        let lease = lease_one(kernel);
        order.push(lease.pid.get());
        kernel.commit_quantum(&lease, &commit("now", "{}", Next::Continue)).unwrap();
    }
    assert_eq!(order, vec![1, 2, 3, 1, 2, 3]);
    // A backoff keeps a process out until its deadline.
    let lease = lease_one(kernel);
    kernel.end_quantum(&lease, None, libos_kernel::QuantumEnd::Backoff(std::time::Duration::from_secs(3600))).unwrap();
    let next = kernel.lease(&owner(), std::time::Duration::from_secs(60), 3, &[pids[1]]).unwrap();
    assert_eq!(next.iter().map(|l| l.pid.get()).collect::<Vec<_>>(), vec![3]);
    assert_eq!(kernel.processes(ProcessFilter::Live).unwrap().len(), 3);
    for lease in &next {
        kernel.commit_quantum(lease, &commit("now", "{}", Next::Continue)).unwrap();
    }
    // Its deadline reached by the kernel's clock, not by waiting: leasable again.
    clock.advance(std::time::Duration::from_secs(3599));
    let early = kernel.lease(&owner(), std::time::Duration::from_secs(60), 3, &[pids[1], pids[2]]).unwrap();
    assert_eq!(early.iter().map(|l| l.pid.get()).collect::<Vec<_>>(), Vec::<i64>::new());
    clock.advance(std::time::Duration::from_secs(2));
    let due = kernel.lease(&owner(), std::time::Duration::from_secs(60), 3, &[pids[1], pids[2]]).unwrap();
    assert_eq!(due.iter().map(|l| l.pid.get()).collect::<Vec<_>>(), vec![1]);
}

fn an_expired_lease_is_recovered_and_a_started_effect_becomes_unknown(backend: Backend) {
    let (store, clock) = kernel_on_clock(backend);
    let kernel = &store.kernel;
    let pid = spawn(kernel, "g");
    let ttl = std::time::Duration::from_secs(60);
    let lease = kernel.lease(&owner(), ttl, 1, &[]).unwrap().remove(0);
    let call = commit("write_file", r#"{"content":"x","path":"a"}"#, Next::Continue).call;
    kernel.begin_effect(&lease, &libos_kernel::EffectIntent { call }).unwrap();
    // A lease is good until its expiry and not a microsecond past it.
    clock.advance(ttl);
    assert_eq!(kernel.recover_expired().unwrap(), Vec::<Pid>::new());
    clock.advance(std::time::Duration::from_micros(1));
    assert_eq!(kernel.recover_expired().unwrap(), vec![pid]);
    let p = kernel.process(pid).unwrap();
    assert_eq!(p.state, ProcState::Runnable { not_before: None });
    let (entries, _) = kernel.transcript(pid, None).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].result.outcome, libos_kernel::Outcome::Unknown);
    assert!(entries[0].result.content.starts_with("outcome unknown: the scheduler running it stopped"));
    let outcomes: Vec<String> =
        kernel.audit(&AuditFilter::default()).unwrap().iter().map(|r| format!("{}:{}", r.action, r.outcome)).collect();
    assert_eq!(outcomes, vec!["spawn:ok", "lease:ok", "write_file:pending", "write_file:unknown", "lease_expired:ok"]);
    // The old lease can no longer write.
    assert!(matches!(
        kernel.commit_quantum(&lease, &commit("now", "{}", Next::Continue)),
        Err(KernelError::Stale { .. })
    ));
}

fn an_approved_call_cut_off_mid_effect_is_reported_unknown_and_not_run_again(backend: Backend) {
    use libos_kernel::caps::{Resource, Right};
    let (store, clock) = kernel_on_clock(backend);
    let kernel = &store.kernel;
    let pid = spawn(kernel, "g");
    let args = r#"{"content":"x","path":"a"}"#;
    let mut ask = commit("write_file", args, Next::Continue);
    ask.action = libos_kernel::Action::Ask { resource: Resource::fs("a"), right: Right::Write, hints: None };
    kernel.commit_quantum(&lease_one(kernel), &ask).unwrap();
    let request = kernel.pending().unwrap().remove(0).id;
    kernel.decide(request, &libos_kernel::Verdict::Approve { always: false }, &Actor::operator()).unwrap();

    // The approved call is leased, starts its effect, and its scheduler dies.
    let lease = kernel.lease(&owner(), std::time::Duration::from_secs(60), 1, &[]).unwrap().remove(0);
    let resumed = lease.resume.clone().expect("the approved call is resumed");
    kernel.begin_effect(&lease, &libos_kernel::EffectIntent { call: resumed.call }).unwrap();
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(kernel.recover_expired().unwrap(), vec![pid]);

    // The next quantum asks the model again: the call is not re-dispatched.
    assert_eq!(lease_one(kernel).resume, None);
    let (entries, _) = kernel.transcript(pid, None).unwrap();
    let seen: Vec<(u64, String, libos_kernel::Outcome)> =
        entries.iter().map(|e| (e.quantum, e.call.tool.clone(), e.result.outcome)).collect();
    assert_eq!(seen, vec![(1, "write_file".to_string(), libos_kernel::Outcome::Unknown)]);
}

fn an_approval_lifts_the_ask_of_its_own_need_and_no_other(backend: Backend) {
    use libos_kernel::caps::{Effect, GrantSpec, Resource, Right};
    use libos_kernel::syscall::Need;
    let store = kernel_on(backend);
    let kernel = &store.kernel;
    let pid = spawn(kernel, "g");
    kernel.grant(pid, &GrantSpec::parse("write fs:** ask").unwrap(), &Actor::operator()).unwrap();
    let mut ask = commit("write_file", r#"{"content":"x","path":"a"}"#, Next::Continue);
    ask.action = libos_kernel::Action::Ask { resource: Resource::fs("a"), right: Right::Write, hints: None };
    kernel.commit_quantum(&lease_one(kernel), &ask).unwrap();
    let request = kernel.pending().unwrap().remove(0).id;
    kernel.decide(request, &libos_kernel::Verdict::Approve { always: false }, &Actor::operator()).unwrap();

    // The lease resumes the call with the need its approval is for.
    let resumed = lease_one(kernel).resume.expect("the approved call is resumed");
    assert_eq!(resumed.binding, libos_kernel::Binding::Intact { resource: Resource::fs("a"), right: Right::Write });
    // That approval lifts that need's ask, and no other.
    let a = Resource::fs("a");
    let effect = |paths: &[&str]| {
        let needs: Vec<Need> = paths.iter().map(|p| Need::grant(Resource::fs(p), Right::Write)).collect();
        kernel.authorize(pid, &needs, Some((&a, Right::Write))).unwrap().effect
    };
    assert_eq!([effect(&["a"]), effect(&["b"]), effect(&["a", "b"])], [Effect::Allow, Effect::Ask, Effect::Ask]);
}

/// Issue 15: a parked call's hints (what its tool says of itself) are kept
/// on its request for display, and are not part of what the approval binds
/// to: the decision and the resumed call are exactly as without them.
fn a_parked_calls_hints_are_shown_on_its_request_and_bind_nothing(backend: Backend) {
    use libos_kernel::caps::{Resource, ResourceKind, Right};
    use libos_kernel::ipc::ToolHints;
    let store = kernel_on(backend);
    let kernel = &store.kernel;
    spawn(kernel, "g");
    let hints = ToolHints {
        title: Some("Wipe\u{1b}[2J".to_string()),
        read_only: Some(false),
        destructive: Some(true),
        idempotent: None,
        open_world: Some(true),
    };
    let resource = Resource::new(ResourceKind::Mcp, "wiper/wipe");
    let mut ask = commit("wiper__wipe", r#"{"label":"x"}"#, Next::Continue);
    ask.action =
        libos_kernel::Action::Ask { resource: resource.clone(), right: Right::Exec, hints: Some(hints.clone()) };
    kernel.commit_quantum(&lease_one(kernel), &ask).unwrap();
    let request = kernel.pending().unwrap().remove(0);
    assert_eq!(
        (request.tool.as_str(), request.args.as_str(), request.hints.as_ref()),
        ("wiper__wipe", r#"{"label":"x"}"#, Some(&hints))
    );
    let decided = kernel.decide(request.id, &libos_kernel::Verdict::Approve { always: false }, &Actor::operator());
    assert_eq!(decided.unwrap().request.hints, Some(hints));
    let resumed = lease_one(kernel).resume.expect("the approved call is resumed");
    assert_eq!(resumed.binding, libos_kernel::Binding::Intact { resource, right: Right::Exec });
    assert_eq!((resumed.call.tool.as_str(), resumed.call.args.as_str()), ("wiper__wipe", r#"{"label":"x"}"#));
    assert_eq!(kernel.audit_verify(None).unwrap().broken, None);
}

fn a_result_holding_a_nul_character_commits(backend: Backend) {
    let postgres = matches!(backend, Backend::Postgres(_));
    let store = kernel_on(backend);
    let kernel = &store.kernel;
    let pid = spawn(kernel, "g");
    let lease = lease_one(kernel);
    let mut c = commit("now", "{}", Next::Continue);
    if let libos_kernel::Action::Done { result, .. } = &mut c.action {
        result.content = "before\0after".to_string();
    }
    kernel.commit_quantum(&lease, &c).unwrap();
    let (entries, _) = kernel.transcript(pid, None).unwrap();
    let stored = if postgres { "before\u{FFFD}after" } else { "before\0after" };
    assert_eq!(entries[0].result.content, stored);
    assert!(kernel.audit_verify(None).unwrap().ok());
}

libos_kernel::on_both_stores!(sync:
    a_result_holding_a_nul_character_commits,
    pids_are_monotonic_and_never_reused,
    a_quantum_commits_state_transcript_usage_and_audit_together,
    a_killed_process_refuses_the_stale_commit_and_nothing_lands,
    killing_a_finished_process_is_refused_with_a_clear_error,
    leases_are_round_robin_and_skip_excluded_and_backed_off_processes,
    an_expired_lease_is_recovered_and_a_started_effect_becomes_unknown,
    an_approved_call_cut_off_mid_effect_is_reported_unknown_and_not_run_again,
    an_approval_lifts_the_ask_of_its_own_need_and_no_other,
    a_parked_calls_hints_are_shown_on_its_request_and_bind_nothing,
);

/// PostgreSQL only: a lease claim picks its rows, then waits a short while
/// for the write order; when another writer holds that order longer, the
/// claim gives way (so it never deadlocks with a writer waiting for its
/// rows) and is tried again, and the lease still comes through.
fn a_lease_claim_that_gives_way_to_a_long_writer_is_retried() {
    let Some(backend @ Backend::Postgres(_)) = Backend::postgres() else { return };
    let store = kernel_on(backend);
    let Backend::Postgres(schema) = &store.backend else { return };
    let pid = spawn(&store.kernel, "g");
    let holder = std::thread::scope(|s| {
        let holder = s.spawn(|| {
            schema.execute(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtext(current_database() || '.' || current_schema())); \
                 SELECT pg_sleep(1); COMMIT",
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let leases = store.kernel.lease(&owner(), std::time::Duration::from_secs(60), 1, &[]).unwrap();
        assert_eq!(leases.iter().map(|l| l.pid).collect::<Vec<_>>(), vec![pid]);
        holder.join().unwrap()
    });
    holder.unwrap();
}

/// Issue 16: a quantum given back before it reached the model (the
/// scheduler shut down) counted against the `quanta` budget; now it does
/// not, while one that made a model call still does.
fn a_quantum_given_back_before_the_model_is_not_counted() {
    let s = kernel_on(Backend::Sqlite);
    let kernel = &s.kernel;
    let pid = spawn(kernel, "g");
    let lease = lease_one(kernel);
    assert_eq!(kernel.process(pid).unwrap().usage.quanta, 1);
    kernel.release(&lease).unwrap();
    assert_eq!(kernel.process(pid).unwrap().usage.quanta, 0);
    let lease = lease_one(kernel);
    assert_eq!(lease.quantum, 1, "the number is used again");
    let mut m = model_call();
    m.outcome = libos_kernel::ModelCallOutcome::Error;
    kernel.record_attempt(&lease, &m).unwrap();
    kernel.release(&lease).unwrap();
    assert_eq!(kernel.process(pid).unwrap().usage.quanta, 1);
}

libos_kernel::tests!(sync:
    every_state_event_pair_has_one_defined_outcome,
    a_transition_produces_its_audit_record,
    a_quantum_given_back_before_the_model_is_not_counted,
);

libos_kernel::on_postgres!(sync:
    a_lease_claim_that_gives_way_to_a_long_writer_is_retried,
);
