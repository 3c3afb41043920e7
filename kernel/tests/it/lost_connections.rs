//! PostgreSQL sessions that go away: terminated between transactions, in
//! the middle of one and during its COMMIT (whose answer may be lost after
//! it committed), and a server that stays out of reach.
//!
//! Issue 14, hole 7: one `pg_terminate_backend` stopped a scheduler node.
//! Listed as ignored (skipped, not passed) without `LIBOS_TEST_POSTGRES`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libos_kernel::testing::{Connection, ScratchSchema};
use libos_kernel::{
    Actor, AuditFilter, Kernel, KernelError, OpenMode, Pid, ProcState, ProcessFilter, SpawnSpec, StoreError,
    StoreLocation,
};
use pretty_assertions::assert_eq;

use crate::support::SPEC;

/// A store on a scratch schema whose kernel sessions are named apart.
struct Fixture {
    schema: ScratchSchema,
    name: String,
    /// Looks at `pg_stat_activity` outside any transaction (inside one,
    /// the view keeps showing what it showed first).
    observer: Connection,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = ScratchSchema::new()?;
        let name = format!("libos_lost_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        Kernel::open(&StoreLocation::Url(schema.url()), OpenMode::Create).unwrap();
        let observer = schema.connect().unwrap();
        Some(Fixture { schema, name, observer })
    }

    /// A kernel whose session carries the fixture's name, at `url`.
    fn kernel_at(&self, url: String) -> Kernel {
        Kernel::open(&StoreLocation::Url(url), OpenMode::Existing).unwrap()
    }

    fn kernel(&self) -> Kernel {
        self.kernel_at(self.schema.url_named(&self.name))
    }

    fn terminate(&self) -> u64 {
        self.schema.terminate_sessions(&self.name).unwrap()
    }

    /// The server processes of the named sessions waiting for a lock, with
    /// the statement they wait in.
    fn waiting(&self) -> Vec<(String, String)> {
        self.observer
            .query(&format!(
                "SELECT pid, query FROM pg_stat_activity WHERE application_name = '{}' AND wait_event_type = 'Lock'",
                self.name
            ))
            .unwrap()
            .into_iter()
            .map(|row| (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default()))
            .collect()
    }

    /// Waits until a named session waits for a lock in a statement
    /// containing `what` (other than the server process `not`); returns its pid.
    fn until_waiting(&self, what: &str, not: Option<&str>) -> String {
        let start = Instant::now();
        loop {
            if let Some((pid, _)) =
                self.waiting().into_iter().find(|(pid, query)| query.contains(what) && Some(pid.as_str()) != not)
            {
                return pid;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no session came to wait in `{what}`");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Makes every COMMIT that inserted a process wait while `db` holds
    /// the gate (a deferred trigger runs at COMMIT, before it is durable).
    fn gate_commits(&self, db: &Connection) {
        db.query(
            "CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               PERFORM pg_advisory_xact_lock_shared(hashtext('gate.' || current_schema())); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON processes DEFERRABLE INITIALLY DEFERRED \
               FOR EACH ROW EXECUTE FUNCTION gate(); \
             SELECT pg_advisory_lock(hashtext('gate.' || current_schema()))",
        )
        .unwrap();
    }

    fn open_gate(&self, db: &Connection) {
        db.query("SELECT pg_advisory_unlock(hashtext('gate.' || current_schema()))").unwrap();
    }
}

fn spec(kernel: &Kernel, goal: &str) -> SpawnSpec {
    SpawnSpec {
        image: kernel.register_image("t", "1", SPEC).unwrap(),
        goal: goal.to_string(),
        workspace: std::path::PathBuf::from("/tmp"),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    }
}

/// Every audit record's action, in order, with the chain verified.
fn history(kernel: &Kernel) -> Vec<String> {
    let report = kernel.audit_verify(None).unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    kernel.audit(&AuditFilter::default()).unwrap().into_iter().map(|r| format!("{} {}", r.kind, r.action)).collect()
}

fn goals(kernel: &Kernel) -> Vec<String> {
    kernel.processes(ProcessFilter::All).unwrap().into_iter().map(|p| p.goal).collect()
}

fn a_session_terminated_between_transactions_is_reconnected_at_the_next() {
    let Some(f) = Fixture::new() else { return };
    let kernel = f.kernel();
    let first = kernel.spawn(&spec(&kernel, "before")).unwrap();

    let mut reconnects = Vec::new();
    for round in 0..5 {
        assert_eq!(f.terminate(), 1, "round {round}: the kernel's one session");
        // A read first, then a write, each the first call on a lost session.
        let start = Instant::now();
        if round % 2 == 0 {
            assert_eq!(kernel.process(first).unwrap().goal, "before");
        } else {
            kernel.spawn(&spec(&kernel, &format!("after {round}"))).unwrap();
        }
        reconnects.push(start.elapsed());
    }
    let start = Instant::now();
    kernel.process(first).unwrap();
    println!("first call after a termination: {reconnects:?}; on a live session: {:?}", start.elapsed());

    assert_eq!(goals(&kernel), ["before", "after 1", "after 3"]);
    assert_eq!(
        kernel.kill(first, Actor::operator(), "done").unwrap(),
        ProcState::Killed { by: Actor::operator(), reason: "done".into() }
    );
}

fn a_session_terminated_mid_transaction_runs_it_again_once() {
    let Some(f) = Fixture::new() else { return };
    let kernel = f.kernel();
    let pid = kernel.spawn(&spec(&kernel, "to be killed")).unwrap();
    // The test holds the process row: the kill waits to lock it (a write
    // locks every process row it reads).
    let db = f.schema.connect().unwrap();
    db.query(&format!("BEGIN; SELECT 1 FROM processes WHERE pid = {} FOR UPDATE", pid.get())).unwrap();
    let killer = {
        let kernel = kernel.clone();
        std::thread::spawn(move || kernel.kill(pid, Actor::operator(), "mid-transaction"))
    };
    let first = f.until_waiting("FOR UPDATE", None);
    assert_eq!(f.terminate(), 1);
    // Run again on a new session, the kill waits for the row again.
    f.until_waiting("FOR UPDATE", Some(&first));
    db.query("ROLLBACK").unwrap();
    assert_eq!(
        killer.join().unwrap(),
        Ok(ProcState::Killed { by: Actor::operator(), reason: "mid-transaction".into() })
    );
    assert_eq!(history(&kernel), ["operator spawn", "state kill"]);
}

fn a_commit_cut_off_before_it_was_durable_is_looked_up_and_run_again() {
    let Some(f) = Fixture::new() else { return };
    let kernel = f.kernel();
    let image = spec(&kernel, "gated");
    let db = f.schema.connect().unwrap();
    f.gate_commits(&db);
    let spawner = {
        let kernel = kernel.clone();
        std::thread::spawn(move || kernel.spawn(&image))
    };
    // Terminated while its COMMIT waits at the gate: the server rolls it
    // back, the kernel cannot know, looks it up, and runs it again.
    let first = f.until_waiting("COMMIT", None);
    assert_eq!(f.terminate(), 1);
    f.until_waiting("COMMIT", Some(&first));
    f.open_gate(&db);
    let pid = spawner.join().unwrap().unwrap();
    assert_eq!(goals(&kernel), ["gated"]);
    assert_eq!(kernel.processes(ProcessFilter::All).unwrap()[0].pid, pid);
    assert_eq!(history(&kernel), ["operator spawn"]);
}

/// A kernel that reaches the server through a proxy, spawning `goal` on a
/// thread; its COMMIT is held at a gate when this returns. `None`: no proxy.
#[allow(clippy::type_complexity)]
fn spawn_held_at_commit(
    f: &Fixture,
    goal: &str,
) -> Option<(Proxy, Kernel, Connection, std::thread::JoinHandle<Result<Pid, KernelError>>)> {
    let proxy = Proxy::start(&f.schema.server())?;
    let kernel = f.kernel_at(f.schema.url_through(&proxy.addr.to_string(), &f.name));
    let image = spec(&kernel, goal);
    let db = f.schema.connect().unwrap();
    f.gate_commits(&db);
    let spawner = {
        let kernel = kernel.clone();
        std::thread::spawn(move || kernel.spawn(&image))
    };
    f.until_waiting("COMMIT", None);
    Some((proxy, kernel, db, spawner))
}

fn a_commit_whose_answer_was_lost_after_it_committed_is_not_run_again() {
    let Some(f) = Fixture::new() else { return };
    let Some((proxy, kernel, db, spawner)) = spawn_held_at_commit(&f, "answer lost") else { return };
    // The server's answers stop reaching the kernel; the COMMIT goes
    // through; then the connection is cut.
    proxy.hold();
    f.open_gate(&db);
    let start = Instant::now();
    while db.cell("SELECT count(*) FROM processes").unwrap().as_deref() != Some("1") {
        assert!(start.elapsed() < Duration::from_secs(10), "the gated COMMIT did not go through");
        std::thread::sleep(Duration::from_millis(5));
    }
    proxy.cut();
    let pid = spawner.join().unwrap().unwrap();
    assert_eq!(kernel.processes(ProcessFilter::All).unwrap().iter().map(|p| p.pid).collect::<Vec<_>>(), [pid]);
    assert_eq!(history(&kernel), ["operator spawn"]);
}

fn a_server_out_of_reach_fails_a_call_in_one_line_within_the_bound() {
    let Some(f) = Fixture::new() else { return };
    let Some(proxy) = Proxy::start(&f.schema.server()) else { return };
    let kernel = f.kernel_at(f.schema.url_through(&proxy.addr.to_string(), &f.name));
    kernel.spawn(&spec(&kernel, "while reachable")).unwrap();
    proxy.refuse();
    proxy.cut();
    let start = Instant::now();
    let err = kernel.kill(Pid(1), Actor::operator(), "out of reach").unwrap_err();
    let took = start.elapsed();
    assert_eq!(
        (err.clone(), err.to_string()),
        (
            KernelError::Store(StoreError::Unreachable(
                "error connecting to server: Connection refused (os error 111)".into()
            )),
            "store is unreachable: error connecting to server: Connection refused (os error 111); nothing was changed"
                .to_string()
        )
    );
    assert!(err.is_transient());
    assert!((Duration::from_secs(4)..Duration::from_secs(8)).contains(&took), "gave up after {took:?}");
    // Nothing changed: the process is as it was.
    assert_eq!(f.kernel().process(Pid(1)).unwrap().state, ProcState::Runnable { not_before: None });
}

fn a_commit_cut_off_with_the_server_out_of_reach_is_reported_unknown() {
    let Some(f) = Fixture::new() else { return };
    let Some((proxy, _kernel, db, spawner)) = spawn_held_at_commit(&f, "fate unknown") else { return };
    proxy.refuse();
    proxy.cut();
    let err = spawner.join().unwrap().unwrap_err();
    assert_eq!(
        err,
        KernelError::Store(StoreError::CommitUnknown(
            "connection closed; store is unreachable: error connecting to server: Connection refused (os error \
             111); nothing was changed"
                .into()
        ))
    );
    assert!(err.is_transient());
    // And indeed: the server process, still at the gate, commits once it opens.
    f.open_gate(&db);
    let start = Instant::now();
    while goals(&f.kernel()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the cut-off COMMIT never went through");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(goals(&f.kernel()), ["fate unknown"]);
}

/// A TCP proxy in front of the test server that can hold back the
/// server's answers, cut its connections and refuse new ones.
struct Proxy {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<Link>>>,
    refused: Arc<AtomicBool>,
    /// Told once the listener is closed.
    closed: std::sync::mpsc::Receiver<()>,
}

struct Link {
    client: TcpStream,
    hold: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy to `server` (`host:port`), or `None` (with the reason
    /// printed) when that is not a TCP address.
    fn start(server: &str) -> Option<Proxy> {
        let upstream = match server.to_socket_addrs().ok().and_then(|mut a| a.next()) {
            Some(a) => a,
            None => {
                println!("skipped: the test server `{server}` is not a TCP host:port");
                return None;
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<Link>>> = Arc::default();
        let refused = Arc::new(AtomicBool::new(false));
        let (l, r) = (links.clone(), refused.clone());
        let (closing, closed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while !r.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(upstream).unwrap();
                        let hold = Arc::new(AtomicBool::new(false));
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap(), None);
                        pipe(server, client.try_clone().unwrap(), Some(hold.clone()));
                        l.lock().unwrap().push(Link { client, hold });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            // Without a listener, new connections fail at once.
            drop(listener);
            let _ = closing.send(());
        });
        Some(Proxy { addr, links, refused, closed })
    }

    /// From now on, what the server sends on the open connections is dropped.
    fn hold(&self) {
        for link in self.links.lock().unwrap().iter() {
            link.hold.store(true, Ordering::Release);
        }
    }

    /// Closes the open connections on the client's side.
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.hold.store(true, Ordering::Release);
            let _ = link.client.shutdown(Shutdown::Both);
        }
    }

    /// Stops listening: new connections are refused.
    fn refuse(&self) {
        self.refused.store(true, Ordering::Release);
        self.closed.recv_timeout(Duration::from_secs(5)).unwrap();
    }
}

/// Copies `from` to `to` on a thread until either end closes; with `hold`
/// set, what is read is dropped instead.
fn pipe(mut from: TcpStream, mut to: TcpStream, hold: Option<Arc<AtomicBool>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if hold.as_ref().is_some_and(|h| h.load(Ordering::Acquire)) {
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

libos_kernel::on_postgres!(sync:
    a_session_terminated_between_transactions_is_reconnected_at_the_next,
    a_session_terminated_mid_transaction_runs_it_again_once,
    a_commit_cut_off_before_it_was_durable_is_looked_up_and_run_again,
    a_commit_whose_answer_was_lost_after_it_committed_is_not_run_again,
    a_server_out_of_reach_fails_a_call_in_one_line_within_the_bound,
    a_commit_cut_off_with_the_server_out_of_reach_is_reported_unknown,
);
