//! Running the binary against a private store.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Env {
    pub dir: tempfile::TempDir,
    /// A store URL to use instead of the SQLite file in `dir`.
    pub url: Option<String>,
}

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap(), url: None }
    }

    /// An env whose commands use the store at `url` (the PostgreSQL suite's,
    /// `tests/postgres`, which shares this file).
    #[allow(dead_code)]
    pub fn on(url: String) -> Env {
        Env { dir: tempfile::tempdir().unwrap(), url: Some(url) }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join(".libos").join("libos.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `libos ARGS` in the env's directory, on its store, with no model configured.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("libos").unwrap();
        cmd.current_dir(self.dir.path())
            .env("LIBOS_DB", self.url.clone().unwrap_or_else(|| self.db().to_string_lossy().into_owned()))
            .env_remove("OPENAI_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("LIBOS_MODEL")
            .env_remove("LIBOS_CONFIG")
            .args(args);
        cmd
    }

    /// Like [`Env::cmd`], as a plain `std::process::Command` (for pipes).
    pub fn std_cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("libos"));
        cmd.current_dir(self.dir.path())
            .env("LIBOS_DB", self.url.clone().unwrap_or_else(|| self.db().to_string_lossy().into_owned()))
            .env_remove("OPENAI_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("LIBOS_MODEL")
            .env_remove("LIBOS_CONFIG")
            .args(args);
        cmd
    }

    /// Runs and returns stdout, asserting success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(out.status.success(), "libos {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expecting failure: (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.cmd(args).output().unwrap();
        assert!(!out.status.success(), "libos {args:?} unexpectedly succeeded");
        (out.status.code().unwrap_or(-1), String::from_utf8(out.stderr).unwrap())
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
