//! The Python package's test suite, run from `cargo nextest run`.
//!
//! 1. A virtual environment with maturin and pytest (pinned) is made once
//!    under `target/pyenv/tools`, and pytest's wheels are kept in
//!    `target/pyenv/wheels` so that later steps need no network.
//! 2. maturin builds the (stripped) wheel on the workspace's own target directory
//!    (`CARGO_TARGET_DIR`), so only this crate and pyo3 are compiled anew.
//! 3. A fresh virtual environment (`target/pyenv/fresh`, made anew every
//!    run) gets the wheel and pytest, offline, from those files.
//! 4. `pytest python/tests` runs in it; with `LIBOS_TEST_POSTGRES` set, in
//!    a scratch schema of that database as well (`LIBOS_PYTEST_POSTGRES`).
//!
//! An exclusive lock on `target/pyenv/lock` serialises concurrent runs.
//! Where PyPI cannot be reached for step 1, the test says so and skips;
//! every other failure fails it, with the command's output.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What the tools environment holds.
const TOOLS: [&str; 2] = ["maturin==1.16.0", "pytest==9.2.0"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

fn pypi_reachable() -> bool {
    use std::net::ToSocketAddrs;
    let Ok(addrs) = ("pypi.org", 443).to_socket_addrs() else { return false };
    addrs.into_iter().any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok())
}

/// Runs `cmd`; its output (both streams) on success, or why it failed.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(text) } else { Err(format!("{cmd:?} failed ({}):\n{text}", out.status)) }
}

/// The tools environment's python, installing it first if needed; `None`
/// (with the reason printed) when PyPI is out of reach.
fn tools(dir: &Path) -> Option<PathBuf> {
    let venv = dir.join("tools");
    let python = venv.join("bin").join("python");
    let stamp = dir.join(format!("installed-{}", TOOLS.join("-")));
    if stamp.exists() {
        return Some(python);
    }
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv)).unwrap();
    let pip = |args: &[&str]| {
        run(Command::new(&python).args(["-m", "pip", "--quiet", "--disable-pip-version-check"]).args(args))
    };
    let installed = pip(&["install"].iter().chain(TOOLS.iter()).copied().collect::<Vec<_>>())
        .and_then(|_| pip(&["download", "--dest", dir.join("wheels").to_str().unwrap(), TOOLS[1]]));
    match installed {
        Ok(_) => {
            std::fs::write(&stamp, "").unwrap();
            Some(python)
        }
        Err(e) if !pypi_reachable() => {
            println!("skipped: PyPI cannot be reached to install {}: {e}", TOOLS.join(", "));
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// `cmd` without what cargo and nextest set for this test (`CARGO_PKG_NAME`,
/// `CARGO_MANIFEST_DIR`, `RUSTUP_TOOLCHAIN`, ...): build scripts that watch
/// those (ring's does) would otherwise run again, and everything above
/// them be rebuilt, in this build and in the next `cargo build` after it.
fn as_from_a_shell(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        let set_for_the_test = (k.starts_with("CARGO") && k != "CARGO_HOME")
            || k.starts_with("NEXTEST")
            || k.starts_with("RUSTUP_TOOLCHAIN")
            || k == "RUST_RECURSION_COUNT";
        if set_for_the_test {
            cmd.env_remove(&key);
        }
    }
    cmd
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let root = workspace();
    let target = target_dir();
    let dir = target.join("pyenv");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join("lock")).unwrap();
    lock.lock().unwrap();
    let Some(tools) = tools(&dir) else { return };
    let bin = tools.parent().unwrap();

    // 2. The wheel, built on the workspace's target directory.
    let wheels = dir.join("built");
    let _ = std::fs::remove_dir_all(&wheels);
    let built = run(as_from_a_shell(&mut Command::new(bin.join("maturin")))
        .args(["build", "--quiet", "--strip", "--manifest-path"])
        .arg(root.join("python").join("Cargo.toml"))
        .arg("--interpreter")
        .arg(&tools)
        .arg("--out")
        .arg(&wheels)
        .env("CARGO_TARGET_DIR", &target));
    built.unwrap_or_else(|e| panic!("{e}"));
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .expect("maturin built no wheel");

    // 3. A fresh environment with the wheel and pytest, offline.
    let fresh = dir.join("fresh");
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&fresh)).unwrap();
    let python = fresh.join("bin").join("python");
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--find-links"])
        .arg(dir.join("wheels"))
        .arg(TOOLS[1])
        .arg(&wheel))
    .unwrap_or_else(|e| panic!("{e}"));

    // 4. The suite, from the package's own directory (so `import libos`
    //    finds the installed wheel, not the source tree).
    let tests = root.join("python").join("tests");
    let postgres = libos_kernel::testing::ScratchSchema::new();
    let mut pytest = Command::new(&python);
    if let Some(schema) = &postgres {
        pytest.env("LIBOS_PYTEST_POSTGRES", schema.url());
    }
    let out = run(pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir"])
        .arg(&tests)
        .arg(&tests)
        .current_dir(&tests));
    match out {
        Ok(text) => println!("{text}"),
        Err(e) => panic!("{e}"),
    }
}
