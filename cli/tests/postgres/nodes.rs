//! Scheduler nodes sharing one PostgreSQL store: three `libos run`
//! processes, one killed midway; two whose sessions are terminated again
//! and again; and wake-ups that arrive by notification.
//!
//! Listed as ignored (skipped, not passed) without `LIBOS_TEST_POSTGRES`.

use libos_kernel::audit::AuditKind;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libos_kernel::testing::ScratchSchema;
use libos_kernel::{AuditFilter, Kernel, OpenMode, ProcState, ProcessFilter, StoreLocation};
use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Env, s};

const PROCESSES: usize = 240;

/// Rounds of `pg_terminate_backend` in the termination test.
const ROUNDS: usize = 20;

/// Each worker: a pause, a memory write (its object's version counts how
/// often that write committed), another pause, and exit.
const SCRIPT: &str = r#"
[[agent]]
image = "worker"
[[agent.step]]
tool = "now"
args = {}
delay_ms = 40
[[agent.step]]
tool = "memory_write"
args = { name = "progress", content = "half way" }
delay_ms = 40
[[agent.step]]
tool = "now"
args = {}
delay_ms = 40
[[agent.step]]
tool = "exit"
args = { result = "done" }
"#;

/// A `libos run` process; its stderr goes to a file, so a chatty node
/// never blocks on a full pipe.
struct Node {
    child: Child,
    log: PathBuf,
}

impl Node {
    /// Waits for the node to exit (a guard against a hang, not a timing
    /// check); returns its status and what it wrote to stderr.
    fn finish(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("a node did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status, std::fs::read_to_string(&self.log).unwrap())
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn node(env: &Env, script: &str, extra: &[&str]) -> Node {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let log = env.path(&format!("node-{}.stderr", NEXT.fetch_add(1, Ordering::Relaxed)));
    let mut args = vec!["run", "--script", script, "--concurrency", "8"];
    args.extend_from_slice(extra);
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("libos"));
    cmd.current_dir(env.dir.path())
        .env("LIBOS_DB", env.url.as_deref().unwrap_or_default())
        .env_remove("OPENAI_BASE_URL")
        .env_remove("LIBOS_MODEL")
        .env_remove("LIBOS_CONFIG")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    Node { child: cmd.spawn().unwrap(), log }
}

/// Spawns `n` workers playing [`SCRIPT`] through `kernel`.
fn spawn_workers(env: &Env, kernel: &Kernel, n: usize) {
    let image = libos_images::ImageSet::shipped().unwrap().get("worker").unwrap().clone();
    let digest = kernel.register_image(&image.name, &image.version, &image.source).unwrap();
    for i in 0..n {
        let spec = libos_kernel::SpawnSpec {
            image: digest.clone(),
            goal: format!("task {i}"),
            workspace: env.dir.path().to_path_buf(),
            parent: None,
            priority: 0,
            actor: libos_kernel::Actor::operator(),
            budget: libos_kernel::budget::Budget::unlimited(),
        };
        kernel.spawn_with_grants(&spec, &image.grants).unwrap();
    }
}

/// Asserts that `n` workers each ran [`SCRIPT`] exactly once: exited with
/// its result, each step committed once (four model calls, one memory
/// write), and its state records one chain (no lease while it ran, so two
/// nodes never ran it at once; one exit). Returns how many leases were
/// taken over after they lapsed.
fn assert_every_worker_ran_once(kernel: &Kernel, n: usize) -> usize {
    let all = kernel.processes(ProcessFilter::All).unwrap();
    assert_eq!(all.len(), n);
    for p in &all {
        assert_eq!(p.state, ProcState::Exited { code: 0, result: "done".into() }, "pid {}", p.pid);
        assert_eq!(p.usage.model_calls, 4, "pid {} made {} committed model calls", p.pid, p.usage.model_calls);
        let view = kernel.memory_view(p.pid).unwrap();
        assert_eq!(view.len(), 1, "pid {}", p.pid);
        assert_eq!(view[0].version, 1, "pid {}: its memory write committed {} times", p.pid, view[0].version);
    }
    let records = state_records(kernel);
    assert_eq!(records.len(), n);
    let mut taken_over = 0;
    for (pid, chain) in &records {
        let mut state = "runnable".to_string();
        for (action, detail) in chain {
            let (from, to) = detail.split_once(" -> ").unwrap_or_else(|| panic!("pid {pid}: {detail}"));
            assert_eq!(from, state, "pid {pid}: `{action}` from {from} while {state}");
            state = to.split_whitespace().next().unwrap_or_default().to_string();
            if action == "lease_expired" {
                taken_over += 1;
            }
        }
        assert_eq!(state, "exited", "pid {pid}");
        assert_eq!(chain.iter().filter(|(a, _)| a == "exit").count(), 1, "pid {pid}");
    }
    taken_over
}

fn state_records(kernel: &Kernel) -> BTreeMap<i64, Vec<(String, String)>> {
    let mut by_pid: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    for r in kernel.audit(&AuditFilter::default()).unwrap() {
        if r.kind == AuditKind::State
            && let (Some(pid), Some(detail)) = (r.pid, r.detail)
        {
            by_pid.entry(pid.get()).or_default().push((r.action.to_string(), detail));
        }
    }
    by_pid
}

fn three_nodes_one_killed_every_process_ends_exactly_once() {
    let Some(schema) = ScratchSchema::new() else { return };
    let env = Env::on(schema.url());
    let script = env.write("script.toml", SCRIPT);
    env.ok(&["init"]);
    let kernel = Kernel::open(&StoreLocation::Url(schema.url()), OpenMode::Existing).unwrap();
    spawn_workers(&env, &kernel, PROCESSES);

    let flags = ["--until-idle", "--lease-ttl", "2s"];
    let mut nodes: Vec<Node> = (0..3).map(|_| node(&env, s(&script), &flags)).collect();
    // Kill one node once the run is well under way, with quanta in flight.
    let start = Instant::now();
    while kernel.processes(ProcessFilter::Live).unwrap().len() > PROCESSES * 2 / 3 {
        assert!(start.elapsed() < Duration::from_secs(120), "the nodes made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The node to kill must hold leases when it dies (quanta are short: it
    // may be between two): wait until it does. Its scheduler ids start
    // with its process id.
    let doomed = format!("{}-", nodes[0].child.id());
    let running_at_kill = loop {
        let held = kernel
            .processes(ProcessFilter::Live)
            .unwrap()
            .iter()
            .filter(|p| matches!(&p.state, ProcState::Running { lease } if lease.owner.0.starts_with(&doomed)))
            .count();
        // Several, so that one committing between this look and the kill
        // still leaves some to lapse (after a while, any).
        if held >= 3 || (held > 0 && start.elapsed() > Duration::from_secs(10)) {
            break held;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the node to kill never held a lease");
        std::thread::sleep(Duration::from_millis(2));
    };
    nodes.remove(0).kill();
    for n in nodes {
        let (status, err) = n.finish(Duration::from_secs(300));
        assert!(status.success(), "a surviving node failed: {err}");
    }

    // Every process ended, exactly once, and the killed node's leases were
    // taken over after they lapsed.
    let taken_over = assert_every_worker_ran_once(&kernel, PROCESSES);
    assert!(taken_over > 0, "no process of the killed node was taken over");
    println!("the killed node held {running_at_kill} leases; {taken_over} taken over after their lease lapsed");

    // One audit chain across the nodes, and it verifies.
    let verify: Value = serde_json::from_str(&env.ok(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(verify["ok"], true, "{verify}");
}

/// Issue 14, hole 7: `pg_terminate_backend` of a node's session made `libos
/// run` exit with `scheduler stopped: store error: terminating connection
/// due to administrator command`. Here every session of two nodes is
/// terminated again and again while they run: both keep running to the
/// end, and every process still runs each step exactly once.
fn terminated_backends_stop_no_node_and_lose_nothing() {
    let Some(schema) = ScratchSchema::new() else { return };
    // The nodes' sessions carry a name of their own; the test's do not.
    let name = format!("libos_terminated_{}", std::process::id());
    let env = Env::on(schema.url_named(&name));
    let script = env.write("script.toml", SCRIPT);
    env.ok(&["init"]);
    let kernel = Kernel::open(&StoreLocation::Url(schema.url()), OpenMode::Existing).unwrap();
    spawn_workers(&env, &kernel, PROCESSES);

    let flags = ["--until-idle", "--lease-ttl", "2s"];
    let mut nodes: Vec<Node> = (0..2).map(|_| node(&env, s(&script), &flags)).collect();
    // Terminate every node session every 100 ms, a bounded number of
    // times, while work remains (a round that finds no session is not counted).
    let (mut rounds, mut terminated) = (0, 0);
    while rounds < ROUNDS && nodes.iter_mut().all(Node::running) {
        std::thread::sleep(Duration::from_millis(100));
        if kernel.processes(ProcessFilter::Live).unwrap().is_empty() {
            break;
        }
        let n = schema.terminate_sessions(&name).unwrap();
        if n > 0 {
            rounds += 1;
            terminated += n;
        }
    }
    for n in nodes {
        let (status, err) = n.finish(Duration::from_secs(300));
        assert!(status.success(), "a node stopped after its session was terminated: {err}");
    }
    assert!(rounds >= 5, "only {rounds} rounds of terminations landed while the nodes ran");

    let taken_over = assert_every_worker_ran_once(&kernel, PROCESSES);
    println!("{terminated} sessions terminated in {rounds} rounds; {taken_over} leases taken over after they lapsed");
    let verify: Value = serde_json::from_str(&env.ok(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(verify["ok"], true, "{verify}");
}

fn an_approval_from_another_process_wakes_a_node_by_notification() {
    let Some(schema) = ScratchSchema::new() else { return };
    let env = Env::on(schema.url());
    let script = env.write(
        "script.toml",
        r#"
[[agent]]
image = "assistant"
[[agent.step]]
tool = "write_file"
args = { path = "out.txt", content = "approved" }
[[agent.step]]
tool = "exit"
args = { result = "written" }
"#,
    );
    env.ok(&["init"]);
    env.ok(&["spawn", "assistant", "--goal", "write it", "--grant", "write fs:** ask"]);
    // The node looks for changes by polling only every 10 s: anything
    // sooner came by notification.
    let node = node(&env, s(&script), &["--poll-ms", "10000"]);
    let kernel = Kernel::open(&StoreLocation::Url(schema.url()), OpenMode::Existing).unwrap();
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(8), "{what}: not within 8 s (the node polls every 10 s)");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    until("parked", &|| !kernel.pending().unwrap().is_empty());
    let id = kernel.pending().unwrap()[0].id;
    env.ok(&["approve", &id.to_string()]);
    until("finished after the approval", &|| kernel.process(libos_kernel::Pid(1)).unwrap().state.is_terminal());
    node.kill();
    assert_eq!(std::fs::read_to_string(env.path("out.txt")).unwrap(), "approved");
}

fn the_demo_runs_on_postgres_and_refuses_a_store_already_in_use() {
    let Some(schema) = ScratchSchema::new() else { return };
    let env = Env::new();
    let out = env.ok(&["demo", "--dir", s(&env.path("demo")), "--store", &schema.url()]);
    assert!(out.contains("exited(0): REPORT.md written from three worker reports"), "{out}");
    assert!(out.contains("== libos audit verify\naudit chain intact: "), "{out}");
    let (code, err) = env.fails(&["demo", "--dir", s(&env.path("again")), "--store", &schema.url()]);
    assert_eq!(
        (code, err.trim_end()),
        (
            1,
            format!("libos: error: the demo needs a store with no processes yet, and {} has some", schema.url())
                .as_str()
        )
    );
}

libos_kernel::on_postgres!(sync:
    three_nodes_one_killed_every_process_ends_exactly_once,
    terminated_backends_stop_no_node_and_lose_nothing,
    an_approval_from_another_process_wakes_a_node_by_notification,
    the_demo_runs_on_postgres_and_refuses_a_store_already_in_use,
);
