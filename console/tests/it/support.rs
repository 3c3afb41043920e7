//! A store with a few processes (one parked on an approval, one on a
//! question) and a server over it.

use std::path::PathBuf;
use std::time::Duration;

use libos_console::Access;
use libos_kernel::caps::{GrantSpec, Resource, Right};
use libos_kernel::quantum::{
    Action, Lease, ModelCallOutcome, ModelCallRecord, Next, QuantumCommit, TokenUsage, ToolCallRecord, ToolResultRecord,
};
use libos_kernel::syscall::{Check, Need};
use libos_kernel::testing::Backend;
use libos_kernel::{Actor, Kernel, OpenMode, Outcome, Pid, ProcessFilter, SchedulerId, SpawnSpec, StoreLocation};

pub const TOKEN: &str = "test-token-0123456789";

/// A quantum's tool call, as [`Server::commit`] records it.
pub struct Call<'a> {
    pub tool: &'a str,
    pub args: &'a str,
    pub rationale: &'a str,
    pub checks: Vec<Check>,
    pub action: Action,
}

pub struct Server {
    pub kernel: Kernel,
    pub base: String,
    pub client: reqwest::Client,
    /// Where the store is (a second handle, as another process, opens this).
    pub location: StoreLocation,
    /// The workspace of the processes spawned here (canonical).
    pub workspace: PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
    /// Declared last: a scratch schema is dropped after the kernel closes.
    _backend: Backend,
}

impl Server {
    /// A loopback server (reads open, actions need the token) on an SQLite file.
    pub async fn start() -> Server {
        Server::start_on(Backend::Sqlite, true).await
    }

    /// A server on `backend`; `loopback: false` behaves as one bound beyond this machine.
    pub async fn start_on(backend: Backend, loopback: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let location = backend.location(&dir.path().join("libos.db"));
        let kernel = Kernel::open(&location, OpenMode::Create).unwrap();
        let workspace = dir.path().join("ws");
        std::fs::create_dir(&workspace).unwrap();
        let workspace = std::fs::canonicalize(workspace).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let access = Access { token: TOKEN.to_string(), loopback };
        tokio::spawn(libos_console::serve(listener, kernel.clone(), access, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        Server { kernel, base, client, location, workspace, _stop: stop, _dir: dir, _backend: backend }
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self.client.post(format!("{}{path}", self.base)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A root process of the shipped `assistant` image.
    pub fn spawn(&self, goal: &str) -> Pid {
        self.spawn_image("assistant", goal, None)
    }

    /// A process of the shipped `image` (a child of `parent`, if any) in
    /// the server's workspace, with the image's grants.
    pub fn spawn_image(&self, image: &str, goal: &str, parent: Option<Pid>) -> Pid {
        let images = libos_images::ImageSet::shipped().unwrap();
        let image = images.get(image).unwrap();
        let digest = self.kernel.register_image(&image.name, &image.version, &image.source).unwrap();
        let spec = SpawnSpec {
            image: digest,
            goal: goal.into(),
            workspace: self.workspace.clone(),
            parent,
            priority: 0,
            actor: Actor::operator(),
            budget: libos_kernel::budget::Budget::unlimited(),
        };
        self.kernel.spawn_with_grants(&spec, &image.grants).unwrap()
    }

    /// Runs one quantum of the next runnable process, ending in `action`.
    pub fn quantum(&self, tool: &str, args: &str, action: Action) -> Pid {
        self.quantum_checked(tool, args, Vec::new(), action)
    }

    /// [`Server::quantum`] with the capability checks that decided the call.
    pub fn quantum_checked(&self, tool: &str, args: &str, checks: Vec<Check>, action: Action) -> Pid {
        let lease = self.lease(None);
        self.commit(&lease, Call { tool, args, rationale: "because the goal says so", checks, action })
    }

    /// Leases `pid` (any runnable process with `None`).
    pub fn lease(&self, pid: Option<Pid>) -> Lease {
        let others: Vec<Pid> = match pid {
            Some(pid) => self
                .kernel
                .processes(ProcessFilter::All)
                .unwrap()
                .into_iter()
                .map(|p| p.pid)
                .filter(|p| *p != pid)
                .collect(),
            None => Vec::new(),
        };
        let owner = SchedulerId("test".into());
        self.kernel.lease(&owner, Duration::from_secs(60), 1, &others).unwrap().remove(0)
    }

    /// Commits the leased quantum: one model call (answered with `call`'s
    /// rationale) and its tool call.
    pub fn commit(&self, lease: &Lease, call: Call<'_>) -> Pid {
        let commit = QuantumCommit {
            model_call: Some(ModelCallRecord {
                cost_micros: 0,
                attempt: 0,
                profile: "test".into(),
                model: "m".into(),
                request_digest: "d".into(),
                request_bytes: 1,
                response: "{}".into(),
                rationale: Some(call.rationale.into()),
                usage: TokenUsage { input: 10, output: 5, estimated: false },
                latency: Duration::from_millis(1),
                outcome: ModelCallOutcome::Ok,
                error: None,
                detail: Default::default(),
            }),
            call: ToolCallRecord {
                call_id: "c1".into(),
                tool: call.tool.into(),
                args: call.args.into(),
                rationale: None,
                carry: None,
            },
            checks: call.checks,
            action: call.action,
            seen: Vec::new(),
        };
        self.kernel.commit_quantum(lease, &commit).unwrap();
        lease.pid
    }

    /// A process parked on approving a write of `report.txt`.
    pub fn parked_on_approval(&self, goal: &str) -> Pid {
        self.spawn(goal);
        let ask = Action::Ask { resource: Resource::fs("report.txt"), right: Right::Write, hints: None };
        self.quantum("write_file", r#"{"content":"v1","path":"report.txt"}"#, ask)
    }

    /// A process whose `tool` call, needing `right` on `resource`, parks on
    /// an approval: its grant of it says `ask`, as the check finds.
    pub fn asks(&self, goal: &str, tool: &str, args: &str, resource: Resource, right: Right) -> Pid {
        let pid = self.spawn(goal);
        self.ask(pid, tool, args, resource, right)
    }

    /// `pid`'s next quantum parks its `tool` call on an approval, as [`Server::asks`].
    pub fn ask(&self, pid: Pid, tool: &str, args: &str, resource: Resource, right: Right) -> Pid {
        self.ask_saying(pid, "because the goal says so", tool, args, resource, right)
    }

    /// [`Server::ask`], the model saying `rationale` with the call.
    pub fn ask_saying(
        &self,
        pid: Pid,
        rationale: &str,
        tool: &str,
        args: &str,
        resource: Resource,
        right: Right,
    ) -> Pid {
        let spec = GrantSpec::parse(&format!("{} {resource} ask", right.as_str())).unwrap();
        self.kernel.grant(pid, &spec, &Actor::operator()).unwrap();
        let need = Need::grant(resource.clone(), right);
        let checks = self.kernel.authorize(pid, &[need], None).unwrap().checks;
        let lease = self.lease(Some(pid));
        let action = Action::Ask { resource, right, hints: None };
        self.commit(&lease, Call { tool, args, rationale, checks, action })
    }

    /// Runs the approved call of the next runnable process, as the
    /// scheduler does (no model call), ending with `result`.
    pub fn resume(&self, result: &str) -> Pid {
        let lease = self.lease(None);
        let approved = lease.resume.clone().expect("an approved call to resume");
        let ask = self.kernel.request(approved.request).unwrap();
        let libos_kernel::ipc::RequestKind::Approval { resource, right } = ask.kind else { panic!("not an approval") };
        let need = Need::grant(resource.clone(), right);
        let checks = self.kernel.authorize(lease.pid, &[need], Some((&resource, right))).unwrap().checks;
        let commit = QuantumCommit {
            model_call: None,
            call: approved.call,
            checks,
            action: Action::Done {
                result: ToolResultRecord { outcome: Outcome::Ok, content: result.into() },
                next: Next::Continue,
            },
            seen: Vec::new(),
        };
        self.kernel.commit_quantum(&lease, &commit).unwrap();
        lease.pid
    }

    /// A process that ran one ordinary quantum and is runnable again.
    pub fn busy(&self, goal: &str) -> Pid {
        self.spawn(goal);
        let done = Action::Done {
            result: ToolResultRecord { outcome: Outcome::Ok, content: "it is noon".into() },
            next: Next::Continue,
        };
        self.quantum("now", "{}", done)
    }
}
