//! Real MCP servers for the tests, installed once under `target/` (a lock
//! file keeps parallel test processes from installing at the same time),
//! and a sandbox to run them in.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use libos_mcp::{Hub, ServerConfig, ServerName};
use libos_sandbox::{Launcher, Sandbox};

/// The npm and PyPI packages the tests drive (versions pinned: the tests
/// name their tools).
pub const NPM_PACKAGES: &[&str] =
    &["@modelcontextprotocol/server-everything@2026.8.31", "@modelcontextprotocol/server-filesystem@2026.8.31"];
/// PyPI packages, into a venv.
pub const PY_PACKAGES: &[&str] = &["mcp==2.3.0", "mcp-server-time==2026.10.19"];

/// `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where the servers are installed.
pub struct Servers {
    /// The npm prefix.
    pub node: PathBuf,
    /// The venv.
    pub py: PathBuf,
}

impl Servers {
    /// An npm package's program.
    pub fn node_bin(&self, name: &str) -> String {
        self.node.join("node_modules/.bin").join(name).display().to_string()
    }
    /// The venv's python.
    pub fn python(&self) -> String {
        self.py.join("bin/python").display().to_string()
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")))
}

fn install(root: &Path) -> Result<Servers, String> {
    std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
    let lock = File::create(root.join("mcp-install.lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    let node = root.join("mcp-node");
    let py = root.join("mcp-py");
    let node_done = node.join(".libos-installed");
    if std::fs::read_to_string(&node_done).ok().as_deref() != Some(&NPM_PACKAGES.join(" ")) {
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&node)
            .args(NPM_PACKAGES))?;
        std::fs::write(&node_done, NPM_PACKAGES.join(" ")).map_err(|e| e.to_string())?;
    }
    let py_done = py.join(".libos-installed");
    if std::fs::read_to_string(&py_done).ok().as_deref() != Some(&PY_PACKAGES.join(" ")) {
        if !py.join("bin/python").exists() {
            run(Command::new("python3").args(["-m", "venv"]).arg(&py))?;
        }
        run(Command::new(py.join("bin/pip")).args(["install", "-q"]).args(PY_PACKAGES))?;
        std::fs::write(&py_done, PY_PACKAGES.join(" ")).map_err(|e| e.to_string())?;
    }
    Ok(Servers { node, py })
}

/// The servers, or `None` with a printed reason when they cannot be
/// installed (the registries are out of reach).
pub fn servers() -> Option<&'static Servers> {
    static SERVERS: OnceLock<Result<Servers, String>> = OnceLock::new();
    match SERVERS.get_or_init(|| install(&target_dir())) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipped: the MCP servers could not be installed from npm/PyPI ({e})");
            None
        }
    }
}

/// The sandbox, through `libos-sandbox` (built here if cargo has not).
pub fn sandbox() -> Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            let launcher = Launcher::find().unwrap_or_else(|_| {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
                let status = Command::new(cargo)
                    .args(["build", "-p", "libos-sandbox", "--bin", "libos-sandbox"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .unwrap();
                assert!(status.success(), "building libos-sandbox failed");
                Launcher::new(target_dir().join("debug/libos-sandbox"))
            });
            Sandbox::confined(launcher).unwrap()
        })
        .clone()
}

/// A hub over the `[mcp.*]` tables in `toml`, with `env` as libos's environment (plus PATH).
pub fn hub(toml: &str, env: &[(&str, &str)]) -> Hub {
    let table: toml::Table = toml::from_str(toml).unwrap();
    let mcp = table.get("mcp").and_then(|v| v.as_table()).cloned().unwrap_or_default();
    let servers: BTreeMap<ServerName, ServerConfig> = libos_mcp::config::parse(&mcp, Path::new("/")).unwrap();
    let mut vars: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vars.entry("PATH".to_string()).or_insert_with(|| std::env::var("PATH").unwrap_or_default());
    Hub::with_env(servers, sandbox(), Vec::new(), Arc::new(move |k: &str| vars.get(k).cloned()))
}

/// A Python MCP server script (the `mcp` SDK's MCPServer) written to a
/// directory of its own, outside any workspace.
pub fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

/// The TOML string literal for `s`.
pub fn lit(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
