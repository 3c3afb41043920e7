//! A store with a few processes (one parked on an approval, one on a
//! question) and a server over it.

use std::path::PathBuf;
use std::time::Duration;

use libos_console::Access;
use libos_kernel::caps::{Resource, Right};
use libos_kernel::quantum::{
    Action, ModelCallOutcome, ModelCallRecord, Next, QuantumCommit, TokenUsage, ToolCallRecord, ToolResultRecord,
};
use libos_kernel::testing::Backend;
use libos_kernel::{Actor, Kernel, OpenMode, Outcome, Pid, SchedulerId, SpawnSpec, StoreLocation};

pub const TOKEN: &str = "test-token-0123456789";

pub struct Server {
    pub kernel: Kernel,
    pub base: String,
    pub client: reqwest::Client,
    /// Where the store is (a second handle, as another process, opens this).
    pub location: StoreLocation,
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let access = Access { token: TOKEN.to_string(), loopback };
        tokio::spawn(libos_console::serve(listener, kernel.clone(), access, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        Server { kernel, base, client, location, _stop: stop, _dir: dir, _backend: backend }
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
        let images = libos_images::ImageSet::shipped().unwrap();
        let image = images.get("assistant").unwrap();
        let digest = self.kernel.register_image(&image.name, &image.version, &image.source).unwrap();
        let spec = SpawnSpec {
            image: digest,
            goal: goal.into(),
            workspace: PathBuf::from("/tmp"),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget: libos_kernel::budget::Budget::unlimited(),
        };
        self.kernel.spawn_with_grants(&spec, &image.grants).unwrap()
    }

    /// Runs one quantum of the next runnable process, ending in `action`.
    pub fn quantum(&self, tool: &str, args: &str, action: Action) -> Pid {
        let owner = SchedulerId("test".into());
        let lease = self.kernel.lease(&owner, Duration::from_secs(60), 1, &[]).unwrap().remove(0);
        let commit = QuantumCommit {
            model_call: Some(ModelCallRecord {
                cost_micros: 0,
                attempt: 0,
                profile: "test".into(),
                model: "m".into(),
                request_digest: "d".into(),
                request_bytes: 1,
                response: "{}".into(),
                rationale: Some("because the goal says so".into()),
                usage: TokenUsage { input: 10, output: 5, estimated: false },
                latency: Duration::from_millis(1),
                outcome: ModelCallOutcome::Ok,
                error: None,
                detail: Default::default(),
            }),
            call: ToolCallRecord {
                call_id: "c1".into(),
                tool: tool.into(),
                args: args.into(),
                rationale: None,
                carry: None,
            },
            checks: Vec::new(),
            action,
            seen: Vec::new(),
        };
        self.kernel.commit_quantum(&lease, &commit).unwrap();
        lease.pid
    }

    /// A process parked on approving a write of `report.txt`.
    pub fn parked_on_approval(&self, goal: &str) -> Pid {
        self.spawn(goal);
        let ask = Action::Ask { resource: Resource::fs("report.txt"), right: Right::Write, hints: None };
        self.quantum("write_file", r#"{"content":"v1","path":"report.txt"}"#, ask)
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
