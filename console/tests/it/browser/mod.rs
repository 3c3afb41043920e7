//! A real browser: headless Chromium, driven over WebDriver by
//! chromedriver, in a window 800 px wide, against a server on a private
//! store. Each test writes screenshots of what it checked to
//! `target/console-screenshots/` (or `$CARGO_TARGET_DIR/console-screenshots/`).
//!
//! Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver`; the tests install them with apt-get when they are
//! missing, and are skipped with the reason printed only when apt cannot
//! get them.

mod approval;
mod hostile;
mod processes;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The window the console must fit without scrolling sideways.
const WIDTH: u32 = 800;

/// Makes sure Chromium and chromedriver are here, or says why not. One
/// test installs at a time (apt holds a lock).
fn browser() -> Result<(), String> {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
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

/// Where the screenshots go.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
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

/// A browser session on the console; closed when dropped.
pub struct Browser {
    http: reqwest::Client,
    url: String,
    _driver: Driver,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: the driver's exit ends the browser anyway.
        let http = self.http.clone();
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async { drop(http.delete(url).send().await) });
            }
        })
        .join();
    }
}

impl Browser {
    /// A browser on `page`, or why there is none (the test then says so and passes).
    pub async fn open(page: &str) -> Option<Browser> {
        if let Err(why) = browser() {
            println!("skipped: {why}");
            return None;
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
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
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={WIDTH},1000"), "--hide-scrollbars"]
        }}}});
        let created: Value =
            http.post(format!("{}/session", driver.base)).json(&caps).send().await.unwrap().json().await.unwrap();
        let id = created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
        let b = Browser { http, url: format!("{}/session/{id}", driver.base), _driver: driver };
        b.go(page).await;
        Some(b)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut r = self.http.request(method, format!("{}{path}", self.url));
        if !body.is_null() {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        v["value"].clone()
    }

    /// Loads `url` (a reload when it is the page shown).
    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    /// Runs `script` in the page (a function body: `return ...`).
    pub async fn js(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Polls `script` until `done` accepts its value; returns that value.
    pub async fn until(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
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

    /// The text of the first element matching `css`, once there is one
    /// whose text satisfies `done`.
    pub async fn text_until(&self, what: &str, css: &str, done: impl Fn(&str) -> bool) -> String {
        let script = format!("const e = document.querySelector({css:?}); return e ? e.innerText : null;");
        let v = self.until(what, &script, |v| v.as_str().is_some_and(&done)).await;
        v.as_str().unwrap().to_string()
    }

    /// Clicks the first element matching `css`, as a person would. The
    /// page re-renders as events arrive: an element replaced between being
    /// found and clicked is found again.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            let found =
                self.call(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
            let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str);
            let id = id.unwrap_or_else(|| panic!("no element {css}: {found}"));
            let r = self.call(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
            if r["error"] == "stale element reference" {
                continue;
            }
            assert!(r.is_null(), "clicking {css} failed: {r}");
            return;
        }
        panic!("{css} kept being replaced before it could be clicked");
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let found = self.call(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("element found");
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), json!({"text": text})).await;
    }

    /// Scrolls `css` into view and writes the viewport to `NAME.png` in
    /// [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str, css: &str) {
        self.js(&format!("document.querySelector({css:?}).scrollIntoView({{block: 'start'}}); return null;")).await;
        let png = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// The page fits the window: nothing sticks out sideways.
    pub async fn fits(&self, view: &str) {
        let widths = self
            .js("const d = document.documentElement; return [window.innerWidth, d.scrollWidth, document.body.scrollWidth];")
            .await;
        assert_eq!(widths[0], json!(WIDTH), "the window is not {WIDTH} px wide");
        let wide = widths.as_array().unwrap().iter().skip(1).any(|w| w.as_u64().unwrap() > u64::from(WIDTH));
        assert!(!wide, "{view} scrolls sideways at {WIDTH} px: {widths}");
    }
}
