//! The test harness of libos's integration suites (`harness = false`,
//! libtest-mimic), so that a test needing PostgreSQL is *listed as
//! ignored* when `LIBOS_TEST_POSTGRES` is not set: `cargo nextest run`
//! reports it skipped and `cargo test` ignored, instead of passed in a few
//! milliseconds having done nothing. With the variable set, every trial runs.
//!
//! Tests are plain functions registered by the macros: [`crate::tests!`]
//! (store-independent), [`crate::on_both_stores!`] (one trial per store)
//! and [`crate::on_postgres!`] (PostgreSQL only). A suite's `main` is
//! [`main`]. A `#[test]` in a suite run by this harness would never run
//! (cargo compiles it out), so one trial of every suite fails on any.

use std::future::Future;
use std::path::Path;

use libtest_mimic::{Arguments, Trial};

use super::POSTGRES_ENV;

/// What a trial needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: it runs everywhere.
    Nothing,
    /// The PostgreSQL database at `LIBOS_TEST_POSTGRES`.
    Postgres,
}

/// A registered trial (see the module docs); made by the macros.
#[derive(Debug)]
pub struct Case {
    /// `module_path!()` where it was registered.
    pub module: &'static str,
    /// Its name in that module (`NAME`, or `NAME::sqlite`).
    pub name: &'static str,
    /// What it needs.
    pub needs: Needs,
    /// Runs it; panics when it fails.
    pub run: fn(),
}

inventory::collect!(Case);

/// Whether `LIBOS_TEST_POSTGRES` names a database.
pub fn postgres_set() -> bool {
    std::env::var(POSTGRES_ENV).is_ok_and(|v| !v.is_empty())
}

/// Stops a PostgreSQL trial run without the database (asked for with
/// `--ignored`): it must fail, not pass having done nothing.
pub fn require_postgres() {
    assert!(
        postgres_set(),
        "this test needs PostgreSQL: set {POSTGRES_ENV} (e.g. postgres://postgres@127.0.0.1:5432/test)"
    );
}

/// Runs `test` to its end on a tokio runtime as `#[tokio::test]` would:
/// current-thread, or with two workers for `multi_thread`.
pub fn block_on<F: Future>(multi_thread: bool, test: F) -> F::Output {
    let mut builder = if multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(test),
        Err(e) => panic!("cannot start a tokio runtime for the test: {e}"),
    }
}

/// The `main` of a suite: every registered trial, PostgreSQL ones ignored
/// without the database, plus the check that `sources` (the suite's
/// directory) holds no `#[test]` this harness would silently skip.
pub fn main(sources: &'static str) -> ! {
    let args = Arguments::from_args();
    let postgres = postgres_set();
    let mut trials: Vec<Trial> = inventory::iter::<Case>
        .into_iter()
        .map(|c| {
            let module = c.module.split_once("::").map_or("", |(_, rest)| rest);
            let name = if module.is_empty() { c.name.to_string() } else { format!("{module}::{}", c.name) };
            let run = c.run;
            Trial::test(name, move || {
                run();
                Ok(())
            })
            .with_ignored_flag(c.needs == Needs::Postgres && !postgres)
        })
        .collect();
    trials.push(Trial::test("harness::every_test_is_registered", move || unregistered(Path::new(sources))));
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    let skipped = trials.iter().filter(|t| t.has_ignored_flag()).count();
    if skipped > 0 && !args.list {
        eprintln!(
            "{skipped} PostgreSQL tests ignored: {POSTGRES_ENV} is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
    }
    libtest_mimic::run(&args, trials).exit()
}

/// Fails naming every `#[test]` or `#[tokio::test]` under `dir`: in a
/// suite with this harness it would never run.
fn unregistered(dir: &Path) -> Result<(), libtest_mimic::Failed> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("cannot list {}: {e}", d.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim_start();
                    if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                        found.push(format!("{}:{}", path.display(), i + 1));
                    }
                }
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    Err(format!(
        "this suite runs on libos_kernel::testing's harness, where #[test] is never run; register these with \
         libos_kernel::tests!, on_both_stores! or on_postgres! instead: {}",
        found.join(", ")
    )
    .into())
}
