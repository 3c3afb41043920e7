//! A real browser: headless Chromium, driven over WebDriver by chromedriver,
//! loads the console, sees a process parked on an approval with its exact
//! call, clicks approve, and sees the process resume and finish and the
//! audit view gain the approval, all from the live event stream.
//!
//! Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver`; the test installs them with apt-get when they are
//! missing and it can, and otherwise is skipped with the reason printed.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libos_kernel::caps::GrantSpec;
use libos_kernel::{Actor, SpawnSpec};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{ModelRouter, Scheduler, SchedulerConfig, Script, ScriptedModel};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::{Server, TOKEN};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Makes sure Chromium and chromedriver are here, or says why not.
fn browser() -> Result<(), String> {
    let present = || std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if present() {
        return Ok(());
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
    };
    let out = install().map_err(|e| format!("apt-get is not available: {e}"))?;
    if !out.status.success() {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get").args(["update", "-q"]).stdin(Stdio::null()).output();
        let out = install().map_err(|e| format!("apt-get is not available: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("cannot install chromium: {}", err.lines().last().unwrap_or_default()));
        }
    }
    if present() { Ok(()) } else { Err("chromium installed but not at /usr/bin".into()) }
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Session<'a> {
    http: &'a reqwest::Client,
    url: String,
}

impl Session<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self.http.request(method, format!("{}{path}", self.url)).json(&body).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        v["value"].clone()
    }

    async fn js(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Polls `script` until `done` accepts its value; returns that value.
    async fn until(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(script).await;
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "the console never showed {what}: last saw {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let found = self.call(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("element found");
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
    }
}

async fn start_driver(http: &reqwest::Client) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver { child, base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{}/status", driver.base)).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["value"]["ready"] == true
        {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const SCRIPT: &str = r#"
[[agent]]
image = "orchestrator"
[[agent.step]]
say = "Writing the report."
tool = "write_file"
args = { path = "report.txt", content = "all good" }
[[agent.step]]
tool = "exit"
args = { result = "report written" }
"#;

async fn an_operator_approves_in_the_browser_and_watches_the_process_finish() {
    if let Err(why) = browser() {
        println!("skipped: {why}");
        return;
    }
    let s = Server::start().await;
    let workspace = tempfile::tempdir().unwrap();
    let images = libos_images::ImageSet::shipped().unwrap();
    let image = images.get("orchestrator").unwrap();
    let digest = s.kernel.register_image(&image.name, &image.version, &image.source).unwrap();
    let spec = SpawnSpec {
        image: digest,
        goal: "write the report".into(),
        workspace: workspace.path().to_path_buf(),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    };
    let grants: Vec<GrantSpec> = image.grants.clone();
    let pid = s.kernel.spawn_with_grants(&spec, &grants).unwrap();
    // A scheduler in the same process, on the scripted model.
    let model = Arc::new(ScriptedModel::new("scripted", Script::parse("browser", SCRIPT).unwrap()));
    let env = quantum::env(s.kernel.clone(), ModelRouter::default().with_override(model), QuantumPolicy::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(async move {
        let config = SchedulerConfig { poll: Duration::from_millis(10), ..SchedulerConfig::default() };
        Scheduler::new(env, config).run(async move { drop(stopped.await) }).await.unwrap();
    });

    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let driver = start_driver(&http).await;
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": CHROMIUM,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    }}}});
    let created: Value =
        http.post(format!("{}/session", driver.base)).json(&caps).send().await.unwrap().json().await.unwrap();
    let id = created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
    let session = Session { http: &http, url: format!("{}/session/{id}", driver.base) };
    session.call(reqwest::Method::POST, "/url", json!({"url": format!("{}/#token={TOKEN}", s.base)})).await;

    // The parked call, exactly as the process made it.
    let card = session
        .until(
            "the pending approval",
            "const c = document.querySelector('[data-request]'); return c ? c.innerText : null;",
            |v| v.as_str().is_some_and(|t| t.contains("report.txt")),
        )
        .await;
    let card = card.as_str().unwrap();
    for needle in [
        "request 1 · pid 1 (orchestrator)",
        "asks: write fs:report.txt",
        "call: write_file",
        "\"content\": \"all good\"",
    ] {
        assert!(card.contains(needle), "the card lacks {needle:?}:\n{card}");
    }
    session.click("#showall").await;
    session.click("[data-request='1'] button.approve").await;

    // The process resumes and finishes; the tree shows it from the stream.
    session
        .until(
            "the process exiting",
            &format!(
                "const p = document.querySelector('.proc[data-pid=\"{pid}\"]'); return p ? p.dataset.state : null;"
            ),
            |v| v == "exited",
        )
        .await;
    // The audit view gained the approval (and what followed), live.
    let actions = session
        .until(
            "the approval in the audit view",
            "return [...document.querySelectorAll('#audit tr')].map(r => r.children[3].textContent);",
            |v| v.as_array().is_some_and(|a| a.iter().any(|x| x == "approve")),
        )
        .await;
    assert!(actions.as_array().unwrap().iter().any(|x| x == "exit"), "{actions}");
    let pending = session.js("return document.querySelectorAll('[data-request]').length;").await;
    assert_eq!(pending, json!(0));
    assert_eq!(std::fs::read_to_string(workspace.path().join("report.txt")).unwrap(), "all good");

    session.call(reqwest::Method::DELETE, "", json!({})).await;
    drop(driver);
    let _ = stop.send(());
    scheduler.await.unwrap();
    // The console's action is in the log as the operator's.
    let approve =
        s.kernel.audit(&libos_kernel::AuditFilter { action: Some("approve".into()), ..Default::default() }).unwrap();
    assert_eq!(approve.iter().map(|r| r.actor.as_str()).collect::<Vec<_>>(), ["human:operator"]);
}

libos_kernel::tests!(async_multi_thread:
    an_operator_approves_in_the_browser_and_watches_the_process_finish,
);
