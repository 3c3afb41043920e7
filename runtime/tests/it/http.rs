//! `http_request` through the real scheduler with the scripted model,
//! against local HTTP servers on 127.0.0.1: what a grant lets through,
//! what it does not, approvals, redirects, loopback names, bounds, and the
//! operator's headers, which reach the server and nothing else.

use libos_kernel::audit::{AuditDecision, KernelAction};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use libos_images::{Image, ImageSet};
use libos_kernel::caps::GrantSpec;
use libos_kernel::{Actor, AuditFilter, Kernel, Outcome, Pid, ProcState, SpawnSpec, Verdict, WaitOn};
use libos_runtime::model::scripted::{Agent, Step};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel};
use libos_tests::{MockServer, Reply};
use libos_tools::{HostHeaders, OperatorHeader, OperatorHeaders};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const IMAGE: &str = r#"
name = "fetcher"
version = "1"
system_prompt = "You fetch things."
tools = ["http_request", "exit"]
"#;

/// One process of the `fetcher` image, holding `grants`, making `calls`
/// (then exiting), run until idle.
struct Fetch {
    kernel: Kernel,
    pid: Pid,
    env: Arc<quantum::QuantumEnv>,
    _dir: tempfile::TempDir,
}

impl Fetch {
    async fn run(grants: &[&str], calls: Vec<Value>, http: OperatorHeaders) -> Fetch {
        Fetch::run_with(libos_kernel::budget::Budget::unlimited(), grants, calls, http).await
    }

    async fn run_with(
        budget: libos_kernel::budget::Budget,
        grants: &[&str],
        calls: Vec<Value>,
        http: OperatorHeaders,
    ) -> Fetch {
        let image = Image::parse("fetcher.toml", IMAGE).unwrap();
        let mut catalog = ImageSet::default();
        catalog.insert(image.clone());
        let kernel = Kernel::in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let digest = kernel.register_image(&image.name, &image.version, &image.source).unwrap();
        let spec = SpawnSpec {
            image: digest,
            goal: "fetch it".into(),
            workspace: dir.path().to_path_buf(),
            parent: None,
            priority: 0,
            actor: Actor::operator(),
            budget,
        };
        let grants: Vec<GrantSpec> = grants.iter().map(|g| GrantSpec::parse(g).unwrap()).collect();
        let pid = kernel.spawn_with_grants(&spec, &grants).unwrap();
        let mut steps: Vec<Step> = calls
            .into_iter()
            .map(|args| Step { text: None, calls: vec![("http_request".into(), args.to_string())], delay: None })
            .collect();
        steps.push(Step {
            text: None,
            calls: vec![("exit".into(), json!({"result": "done"}).to_string())],
            delay: None,
        });
        let script = Script {
            origin: "test".into(),
            agents: vec![Agent { image: "fetcher".into(), goal_contains: None, steps }],
        };
        let model = Arc::new(ScriptedModel::new("scripted", script));
        let env = quantum::env_with_catalog(
            kernel.clone(),
            ModelRouter::default().with_override(model),
            QuantumPolicy { max_repairs: 2, backoff: Duration::from_secs(60) },
            catalog,
        );
        let env = quantum::with_http(env, http);
        let fetch = Fetch { kernel, pid, env, _dir: dir };
        fetch.until_idle().await;
        fetch
    }

    async fn until_idle(&self) {
        let config = SchedulerConfig { until_idle: true, poll: Duration::from_millis(5), ..Default::default() };
        Scheduler::new(self.env.clone(), config).run(std::future::pending()).await.unwrap();
    }

    /// What the model saw of its `http_request` calls: outcome and result.
    fn results(&self) -> Vec<(Outcome, String)> {
        let (entries, _) = self.kernel.transcript(self.pid, None).unwrap();
        entries
            .into_iter()
            .filter(|e| e.call.tool == "http_request")
            .map(|e| (e.result.outcome, e.result.content))
            .collect()
    }

    /// The only result.
    fn result(&self) -> (Outcome, String) {
        let mut all = self.results();
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    /// Every audit record of the process, as text.
    fn audit_text(&self) -> String {
        let records = self.kernel.audit(&AuditFilter { pid: Some(self.pid), ..Default::default() }).unwrap();
        records.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join("\n")
    }
}

fn get(url: &str) -> Value {
    json!({"method": "GET", "url": url})
}

fn lines(requests: &[libos_tests::Request]) -> Vec<String> {
    requests.iter().map(|r| r.line.clone()).collect()
}

fn port(server: &MockServer) -> u16 {
    server.base_url().trim_start_matches("http://127.0.0.1:").trim_end_matches("/v1").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_request_is_sent_and_its_answer_shown() {
    let server =
        MockServer::start(vec![Reply::ok(json!({"hello": "world"})), Reply::status(404, "no such page")]).await;
    let p = port(&server);
    let url = format!("http://127.0.0.1:{p}/hello?x=1#frag");
    let post = json!({"method": "post", "url": format!("http://127.0.0.1:{p}/items"), "headers": {"Content-Type": "application/json", "X-Trace": "7"}, "body": "{\"n\":1}"});
    let f = Fetch::run(
        &[&format!("read,write net:127.0.0.1:{p}")],
        vec![get(&url), post, get(&format!("http://127.0.0.1:{p}/missing"))],
        OperatorHeaders::default(),
    )
    .await;
    assert_eq!(
        f.results(),
        vec![
            (
                Outcome::Ok,
                "HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 17\n\n{\"hello\":\"world\"}".into()
            ),
            (Outcome::Error, "HTTP/1.1 404 Not Found\ncontent-type: application/json\ncontent-length: 12\n\nno such page".into()),
            (Outcome::Error, "HTTP/1.1 500 Internal Server Error\ncontent-type: application/json\ncontent-length: 15\n\nno more replies".into()),
        ]
    );
    let requests = server.requests();
    assert_eq!(lines(&requests), vec!["GET /hello?x=1 HTTP/1.1", "POST /items HTTP/1.1", "GET /missing HTTP/1.1"]);
    assert_eq!(requests[1].body, json!({"n": 1}));
    assert!(requests[1].headers.contains(&("x-trace".to_string(), "7".to_string())), "{:?}", requests[1].headers);
    // The canonical call is the URL requested: no fragment, the method uppercase.
    let (entries, _) = f.kernel.transcript(f.pid, None).unwrap();
    assert_eq!(entries[0].call.args, format!(r#"{{"method":"GET","url":"http://127.0.0.1:{p}/hello?x=1"}}"#));
    assert!(f.kernel.audit_verify(None).unwrap().ok());

    // A replay answers the requests from the record: none is sent again.
    let report = libos_runtime::replay::replay(&f.kernel, f.pid).await.unwrap();
    assert!(report.matches(), "{report:#?}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_or_method_without_a_grant_is_denied_and_never_contacted() {
    let server = MockServer::start(vec![]).await;
    let p = port(&server);
    let f = Fetch::run(
        &[&format!("read net:127.0.0.1:{}", p.wrapping_add(1).max(1))],
        vec![get(&format!("http://127.0.0.1:{p}/x"))],
        OperatorHeaders::default(),
    )
    .await;
    assert_eq!(
        f.result(),
        (Outcome::Denied, format!("permission denied: read net:127.0.0.1:{p} (no grant of yours covers it)"))
    );
    let f = Fetch::run(
        &[&format!("read net:127.0.0.1:{p}")],
        vec![json!({"method": "DELETE", "url": format!("http://127.0.0.1:{p}/x")})],
        OperatorHeaders::default(),
    )
    .await;
    assert_eq!(
        f.result(),
        (Outcome::Denied, format!("permission denied: write net:127.0.0.1:{p} (no grant of yours covers it)"))
    );
    assert_eq!(lines(&server.requests()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_grant_parks_the_exact_url_and_approval_runs_exactly_it() {
    let server = MockServer::start(vec![Reply::status(201, "created")]).await;
    let p = port(&server);
    let url = format!("http://127.0.0.1:{p}/issues?label=bug");
    let call = json!({"method": "POST", "url": url, "body": "{\"title\":\"crash\"}"});
    let f = Fetch::run(&[&format!("write net:127.0.0.1:{p} ask")], vec![call], OperatorHeaders::default()).await;
    let pending = f.kernel.pending().unwrap();
    assert_eq!(pending.len(), 1);
    // What the approval card shows: the tool, the method and the exact URL.
    assert_eq!(
        (pending[0].tool.as_str(), pending[0].args.as_str()),
        ("http_request", format!(r#"{{"body":"{{\"title\":\"crash\"}}","method":"POST","url":"{url}"}}"#).as_str())
    );
    assert!(matches!(f.kernel.process(f.pid).unwrap().state, ProcState::Waiting { on: WaitOn::Human(_) }));
    assert_eq!(lines(&server.requests()), Vec::<String>::new(), "nothing is sent before the approval");

    f.kernel.decide(pending[0].id, &Verdict::Approve { always: false }, &Actor::operator()).unwrap();
    f.until_idle().await;
    assert_eq!(
        f.result(),
        (Outcome::Ok, "HTTP/1.1 201 Created\ncontent-type: application/json\ncontent-length: 7\n\ncreated".into())
    );
    assert_eq!(lines(&server.requests()), vec!["POST /issues?label=bug HTTP/1.1"]);
    assert!(matches!(f.kernel.process(f.pid).unwrap().state, ProcState::Exited { .. }));

    // Approving a call a wildcard `ask` parked does not make the wildcard
    // reach loopback: the deciding grant's exactness still decides.
    let f =
        Fetch::run(&["write net:* ask"], vec![json!({"method": "POST", "url": url})], OperatorHeaders::default()).await;
    let pending = f.kernel.pending().unwrap();
    f.kernel.decide(pending[0].id, &Verdict::Approve { always: false }, &Actor::operator()).unwrap();
    f.until_idle().await;
    assert_eq!(
        f.result(),
        (
            Outcome::Error,
            format!(
                "`POST {url}`: not sent: 127.0.0.1 resolves to 127.0.0.1, which is not a public address: only a \
                 grant naming 127.0.0.1 exactly reaches it"
            )
        )
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_only_to_hosts_the_grants_allow_now() {
    let granted = MockServer::start(vec![]).await;
    let elsewhere = MockServer::start(vec![]).await;
    let (a, b) = (port(&granted), port(&elsewhere));
    // A 303 after a POST becomes a GET to the granted second server; a
    // redirect to a host with no grant is refused before it is contacted.
    granted.always(Reply::status(303, "").header("location", &format!("http://127.0.0.1:{a}/done")));
    let f = Fetch::run(
        &[&format!("read,write net:127.0.0.1:{a}")],
        vec![json!({"method": "POST", "url": format!("http://127.0.0.1:{a}/submit"), "body": "{}"})],
        OperatorHeaders::default(),
    )
    .await;
    let (outcome, text) = f.result();
    assert_eq!(outcome, Outcome::Error, "{text}");
    assert_eq!(
        text,
        format!(
            "`POST http://127.0.0.1:{a}/submit`: stopped after 5 redirects (the next: http://127.0.0.1:{a}/done) \
             (after redirects: {})",
            vec![format!("303 See Other -> GET http://127.0.0.1:{a}/done"); 5].join(", ")
        )
    );
    let seen = lines(&granted.requests());
    assert_eq!(seen[0], "POST /submit HTTP/1.1");
    assert_eq!(seen[1..], vec!["GET /done HTTP/1.1".to_string(); 5][..]);

    let first = MockServer::start(vec![
        Reply::status(302, "").header("location", &format!("http://127.0.0.1:{b}/stolen?data=1")),
        Reply::status(307, "").header("location", "/next"),
        Reply::ok(json!("arrived")),
    ])
    .await;
    let c = port(&first);
    let f = Fetch::run(
        &[&format!("read net:127.0.0.1:{c}")],
        vec![get(&format!("http://127.0.0.1:{c}/start")), get(&format!("http://127.0.0.1:{c}/start"))],
        OperatorHeaders::default(),
    )
    .await;
    assert_eq!(
        f.results(),
        vec![
            (
                Outcome::Error,
                format!(
                    "`GET http://127.0.0.1:{c}/start`: the redirect to http://127.0.0.1:{b}/stolen?data=1 was refused, \
                     nothing was sent there: permission denied: read net:127.0.0.1:{b} (no grant of yours covers it) \
                     (redirects: 302 Found -> GET http://127.0.0.1:{b}/stolen?data=1)"
                )
            ),
            (
                Outcome::Ok,
                format!(
                    "HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 9\nredirects: 307 Temporary \
                     Redirect -> GET http://127.0.0.1:{c}/next\n\n\"arrived\""
                )
            ),
        ]
    );
    assert_eq!(lines(&elsewhere.requests()), Vec::<String>::new(), "the ungranted host was never contacted");
    assert_eq!(lines(&first.requests()), vec!["GET /start HTTP/1.1", "GET /start HTTP/1.1", "GET /next HTTP/1.1"]);
}

/// Issue 17, defect 3: a destination refused mid-call (a redirect) was in
/// the call's result only; it is an audited denial of its own, with its
/// check, and the call's record still says how the call ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_refused_mid_call_is_an_audited_denial_with_its_check() {
    let elsewhere = MockServer::start(vec![]).await;
    let b = port(&elsewhere);
    let first =
        MockServer::start(vec![Reply::status(302, "").header("location", &format!("http://127.0.0.1:{b}/stolen"))])
            .await;
    let c = port(&first);
    let f = Fetch::run(
        &[&format!("read net:127.0.0.1:{c}")],
        vec![get(&format!("http://127.0.0.1:{c}/start"))],
        OperatorHeaders::default(),
    )
    .await;
    let records = f.kernel.audit(&AuditFilter { pid: Some(f.pid), ..Default::default() }).unwrap();
    let refusals: Vec<String> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Denied || r.action.is_tool("http_request"))
        .map(|r| {
            let decision = r.decision.map_or("-", AuditDecision::as_str);
            let grant = r.grant.map_or("-".to_string(), |g| g.to_string());
            format!("{} {} {} {decision} {grant} {} {}", r.actor, r.kind, r.action, r.outcome, r.args)
        })
        .collect();
    let pid = f.pid;
    let call = json!({"method": "GET", "url": format!("http://127.0.0.1:{c}/start")});
    let denial = json!({"tool": "http_request", "host": "127.0.0.1", "port": b, "right": "read"});
    // Grant 1: the process's only one, `read net:127.0.0.1:C`.
    assert_eq!(
        refusals,
        vec![
            format!("pid:{pid} effect http_request - - pending {call}"),
            format!("pid:{pid} kernel connect deny - denied {denial}"),
            format!("pid:{pid} tool http_request allow 1 error {call}"),
        ]
    );
    let detail = records.iter().find(|r| r.action.is(KernelAction::Connect)).and_then(|r| r.detail.clone());
    assert_eq!(
        detail.as_deref(),
        Some(
            format!(
                "http_request: permission denied: read net:127.0.0.1:{b} (no grant of yours covers it) \
                 [read net:127.0.0.1:{b}: deny (no grant matches)]"
            )
            .as_str()
        )
    );
    assert!(f.kernel.audit_verify(None).unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_needs_a_grant_naming_it_exactly() {
    let server = MockServer::start(vec![Reply::ok(json!("local"))]).await;
    let p = port(&server);
    let url = format!("http://localhost:{p}/");
    let f = Fetch::run(&["read net:*"], vec![get(&url)], OperatorHeaders::default()).await;
    let (outcome, text) = f.result();
    assert_eq!(outcome, Outcome::Error);
    assert!(
        text.starts_with(&format!(
            "`GET {url}`: not sent: localhost resolves to 127.0.0.1, which is not a public address: only a grant \
             naming localhost exactly reaches it"
        )) || text.starts_with(&format!(
            "`GET {url}`: not sent: localhost resolves to ::1, which is not a public address: only a grant naming \
             localhost exactly reaches it"
        )),
        "{text}"
    );
    assert_eq!(lines(&server.requests()), Vec::<String>::new());
    // `net:*.localhost` is a wildcard too; `net:localhost:PORT` names it.
    let f = Fetch::run(&[&format!("read net:localhost:{p}")], vec![get(&url)], OperatorHeaders::default()).await;
    assert_eq!(
        f.result(),
        (Outcome::Ok, "HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 7\n\n\"local\"".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_binary_is_described_and_a_silent_server_times_out() {
    let big = "a".repeat(300 * 1024);
    let mut png =
        b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 6\r\nconnection: close\r\n\r\n".to_vec();
    png.extend_from_slice(&[0x89, b'P', b'N', b'G', 0, 0xff]);
    let server = MockServer::start(vec![
        Reply::status(200, &big),
        Reply::Raw(png),
        Reply::status(200, "late").delayed(Duration::from_secs(3600)),
    ])
    .await;
    let p = port(&server);
    let f = Fetch::run(
        &[&format!("read net:127.0.0.1:{p}")],
        vec![
            get(&format!("http://127.0.0.1:{p}/big")),
            get(&format!("http://127.0.0.1:{p}/logo.png")),
            json!({"method": "GET", "url": format!("http://127.0.0.1:{p}/slow"), "timeout_s": 1}),
        ],
        OperatorHeaders::default(),
    )
    .await;
    let results = f.results();
    assert_eq!(results.len(), 3);
    let head = "HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 307200\n\n";
    let expected = format!(
        "{head}{}\n[body cut: the first 262144 bytes of 307200 bytes shown]",
        "a".repeat(libos_tools::builtin::http_request::MAX_BODY_BYTES)
    );
    assert!(
        results[0].1 == expected,
        "cut body: {} bytes, ends {:?}",
        results[0].1.len(),
        &results[0].1[results[0].1.len() - 80..]
    );
    assert_eq!(
        results[1..],
        [
            (
                Outcome::Ok,
                "HTTP/1.1 200 OK\ncontent-type: image/png\ncontent-length: 6\n\n[binary body: image/png, 6 bytes]"
                    .into()
            ),
            (Outcome::Error, format!("`GET http://127.0.0.1:{p}/slow`: no complete answer within its 1 s time limit")),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_only_from_the_operator_and_appear_nowhere_else() {
    let server = MockServer::start(vec![]).await;
    server.always(Reply::ok(json!("authorised")));
    let p = port(&server);
    let secret = "s3cret-token-value";
    let mut hosts = BTreeMap::new();
    hosts.insert(
        "127.0.0.1".to_string(),
        HostHeaders {
            headers: vec![OperatorHeader { name: "x-api-key".into(), var: "FETCH_TOKEN".into() }],
            allow_http: true,
        },
    );
    let env: libos_tools::http::EnvReader =
        Arc::new(move |var| (var == "FETCH_TOKEN").then(|| "s3cret-token-value".to_string()));
    let http = OperatorHeaders::new(hosts).with_env(env);
    let url = format!("http://127.0.0.1:{p}/me");
    let f = Fetch::run(
        &[&format!("read net:127.0.0.1:{p}")],
        vec![
            json!({"method": "GET", "url": url, "headers": {"Authorization": "Bearer stolen"}}),
            json!({"method": "GET", "url": url, "headers": {"X-Api-Key": "mine"}}),
            get(&url),
        ],
        http,
    )
    .await;
    // The model's Authorization is rejected at parse (and repaired); its
    // own X-Api-Key is refused for the host the operator configured it for.
    assert_eq!(
        f.results(),
        vec![
            (
                Outcome::Error,
                format!(
                    "`GET {url}`: not sent: header `X-Api-Key` for 127.0.0.1 is set by the operator's configuration, \
                     never by a call"
                )
            ),
            (
                Outcome::Ok,
                "HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 12\n\n\"authorised\"".into()
            ),
        ]
    );
    let rejected: Vec<String> = f
        .kernel
        .audit(&AuditFilter { pid: Some(f.pid), ..Default::default() })
        .unwrap()
        .into_iter()
        .filter(|r| r.outcome == Outcome::Rejected)
        .filter_map(|r| r.detail)
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]
            .contains("header `Authorization` is refused: credentials come only from the operator's configuration"),
        "{rejected:?}"
    );
    let requests = server.requests();
    assert_eq!(lines(&requests), vec!["GET /me HTTP/1.1"]);
    assert!(requests[0].headers.contains(&("x-api-key".to_string(), secret.to_string())), "{:?}", requests[0].headers);
    // Nowhere in what libos keeps: the audit, the transcript, the records.
    assert!(!f.audit_text().contains(secret));
    let (entries, _) = f.kernel.transcript(f.pid, None).unwrap();
    assert!(!format!("{entries:?}").contains(secret));
    assert!(f.kernel.audit_verify(None).unwrap().ok());

    // Over plain http they go only where the operator allows it; a missing
    // variable is named, never guessed.
    let mut hosts = BTreeMap::new();
    hosts.insert(
        "127.0.0.1".to_string(),
        HostHeaders {
            headers: vec![OperatorHeader { name: "x-api-key".into(), var: "FETCH_TOKEN".into() }],
            allow_http: false,
        },
    );
    let f =
        Fetch::run(&[&format!("read net:127.0.0.1:{p}")], vec![get(&url)], OperatorHeaders::new(hosts.clone())).await;
    assert_eq!(
        f.result(),
        (
            Outcome::Error,
            format!(
                "`GET {url}`: not sent: the operator's headers for 127.0.0.1 go over https only (allow_http = true \
                 under [http.\"127.0.0.1\"] sends them over http)"
            )
        )
    );
    hosts.get_mut("127.0.0.1").unwrap().allow_http = true;
    let nothing: libos_tools::http::EnvReader = Arc::new(|_| None);
    let f = Fetch::run(
        &[&format!("read net:127.0.0.1:{p}")],
        vec![get(&url)],
        OperatorHeaders::new(hosts).with_env(nothing),
    )
    .await;
    assert_eq!(
        f.result(),
        (
            Outcome::Error,
            format!(
                "`GET {url}`: not sent: the operator's header `x-api-key` for 127.0.0.1 comes from environment \
                 variable FETCH_TOKEN, which is not set"
            )
        )
    );
    assert_eq!(server.requests().len(), 1);
}

/// Lets everything through, reaching any address (the grants' part is
/// tested above; here, the call's own life).
#[derive(Debug)]
struct Open;

impl libos_sandbox::NetGate for Open {
    fn decide(&self, _: &str, _: u16, _: libos_sandbox::Use) -> Result<libos_sandbox::Reach, String> {
        Ok(libos_sandbox::Reach::Any)
    }
    fn reach(&self, _: &str, _: u16, _: libos_sandbox::Use) -> Result<libos_sandbox::Reach, String> {
        Ok(libos_sandbox::Reach::Any)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_stops_its_request_at_once() {
    let server = MockServer::start(vec![Reply::status(200, "late").delayed(Duration::from_secs(3600))]).await;
    let url = format!("http://127.0.0.1:{}/slow", port(&server));
    let call = libos_tools::ToolCall::parse(
        "http_request",
        &json!({"method": "GET", "url": url, "timeout_s": 300}).to_string(),
        &libos_tools::ToolSet::builtins(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let workspace = libos_tools::Workspace::new(dir.path(), Vec::new()).unwrap();
    let mut ctx = libos_tools::ToolContext::new(workspace, libos_kernel::clock::system_now());
    ctx.net = Some(Arc::new(Open));
    let cancel = ctx.cancel.clone();
    let running = tokio::task::spawn_blocking(move || call.run(&ctx));
    // Cancel once the server holds the request (a kill of the process does
    // this through the quantum's CancelOnDrop).
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    assert_eq!(
        running.await.unwrap(),
        libos_tools::ToolOutput::Error(format!("`GET {url}`: stopped: the call was cancelled"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_outlives_the_wall_time_budget() {
    let server = MockServer::start(vec![Reply::status(200, "late").delayed(Duration::from_secs(3600))]).await;
    let url = format!("http://127.0.0.1:{}/slow", port(&server));
    let budget = libos_kernel::budget::Budget::parse(["wall_time=2"]).unwrap();
    let call = json!({"method": "GET", "url": url, "timeout_s": 300});
    let f = Fetch::run_with(
        budget,
        &[&format!("read net:127.0.0.1:{}", port(&server))],
        vec![call],
        OperatorHeaders::default(),
    )
    .await;
    let (outcome, text) = f.results().remove(0);
    assert_eq!(outcome, Outcome::Error);
    assert!(text.starts_with(&format!("`GET {url}`: stopped when the wall_time budget ran out (")), "{text}");
}
