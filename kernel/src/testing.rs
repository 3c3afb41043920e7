//! Running the same tests on both stores (for libos's own test suites).
//!
//! [`Backend`] names the store a test runs on; [`on_both_stores!`](crate::on_both_stores) turns a
//! test function taking one into two trials, `NAME::sqlite` and
//! `NAME::postgres`. The PostgreSQL one runs in a fresh schema of the
//! database at `LIBOS_TEST_POSTGRES`, dropped when the test ends. The
//! suites run on [`harness`], which lists PostgreSQL trials as ignored when
//! that variable is not set (so they count as skipped, not passed).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::store::{StoreLocation, pg};

mod faults;
pub mod harness;

pub use faults::StoreFaults;

#[doc(hidden)]
pub use inventory;

/// The environment variable naming the PostgreSQL database tests may use.
pub const POSTGRES_ENV: &str = "LIBOS_TEST_POSTGRES";

/// The store a test runs on.
pub enum Backend {
    /// An SQLite file (where is the test's business).
    Sqlite,
    /// A scratch schema in PostgreSQL.
    Postgres(ScratchSchema),
}

impl Backend {
    /// A fresh PostgreSQL schema, or `None` (and the reason printed) when
    /// `LIBOS_TEST_POSTGRES` is not set.
    pub fn postgres() -> Option<Backend> {
        ScratchSchema::new().map(Backend::Postgres)
    }

    /// Where the store is: `sqlite_file` on SQLite, the schema on PostgreSQL.
    pub fn location(&self, sqlite_file: &Path) -> StoreLocation {
        match self {
            Backend::Sqlite => StoreLocation::File(sqlite_file.to_path_buf()),
            Backend::Postgres(schema) => StoreLocation::Url(schema.url()),
        }
    }

    /// Runs SQL on the store behind libos's back (to tamper with it).
    pub fn tamper(&self, sqlite_file: &Path, sql: &str) -> Result<(), String> {
        match self {
            Backend::Sqlite => {
                rusqlite::Connection::open(sqlite_file).and_then(|c| c.execute_batch(sql)).map_err(|e| e.to_string())
            }
            Backend::Postgres(schema) => schema.execute(sql),
        }
    }
}

/// An empty schema of its own in the test database, dropped on drop.
pub struct ScratchSchema {
    base: String,
    schema: String,
}

impl ScratchSchema {
    /// Creates one, or prints why not and returns `None` when
    /// `LIBOS_TEST_POSTGRES` is unset. Panics if the database cannot be
    /// reached: a test asked to run there must not pass without it.
    pub fn new() -> Option<ScratchSchema> {
        let Some(base) = std::env::var(POSTGRES_ENV).ok().filter(|v| !v.is_empty()) else {
            println!("skipped on PostgreSQL: {POSTGRES_ENV} is not set (e.g. postgres://postgres@127.0.0.1:5432/test)");
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema =
            format!("libos_test_{}_{}_{:08x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), rand_u32());
        let scratch = ScratchSchema { base, schema };
        if let Err(e) = scratch.execute(&format!("CREATE SCHEMA {}", scratch.schema)) {
            panic!("cannot create a schema in {}: {e}", pg::redact(&scratch.base));
        }
        Some(scratch)
    }

    /// The URL of a store in this schema.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.schema)
    }

    /// The URL of a store in this schema whose sessions name themselves
    /// `name` (their `application_name`), so that a test can find exactly
    /// its own sessions in `pg_stat_activity`.
    pub fn url_named(&self, name: &str) -> String {
        format!("{}&application_name={name}", self.url())
    }

    /// Runs SQL in this schema (to tamper with a store, say).
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        pg::execute_once(&self.url(), sql)
    }

    /// Runs SQL in this schema and returns its rows, each column as text.
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        self.connect()?.query(sql)
    }

    /// A connection of the test's own to this schema, kept open (to hold a
    /// lock across kernel calls, say).
    pub fn connect(&self) -> Result<Connection, String> {
        pg::plain_client(&self.url()).map(Connection)
    }

    /// The server's `host:port`, as `LIBOS_TEST_POSTGRES` names it.
    pub fn server(&self) -> String {
        let rest = self.base.split_once("://").map_or(self.base.as_str(), |(_, rest)| rest);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        rest.split(['/', '?']).next().unwrap_or_default().to_string()
    }

    /// [`ScratchSchema::url_named`] through another `host:port` (a proxy in
    /// front of [`ScratchSchema::server`]).
    pub fn url_through(&self, server: &str, name: &str) -> String {
        self.url_named(name).replacen(&self.server(), server, 1)
    }

    /// Terminates every session named `name` (see [`ScratchSchema::url_named`])
    /// with `pg_terminate_backend`, as an administrator would; returns how many.
    pub fn terminate_sessions(&self, name: &str) -> Result<u64, String> {
        let count = self
            .connect()?
            .cell(&format!(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = '{}' AND pid <> pg_backend_pid()",
                name.replace('\'', "''")
            ))?
            .unwrap_or_default();
        count.parse().map_err(|_| format!("pg_terminate_backend counted `{count}`"))
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        let _ = pg::execute_once(&self.base, &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

/// A test's own connection (see [`ScratchSchema::connect`]); closed on drop.
pub struct Connection(tokio_postgres::Client);

impl Connection {
    /// Runs SQL (any number of statements); returns their rows, each column as text.
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        pg::simple_rows(&self.0, sql)
    }

    /// The first column of the first row `sql` returns, as text.
    pub fn cell(&self, sql: &str) -> Result<Option<String>, String> {
        Ok(self.query(sql)?.into_iter().next().and_then(|row| row.into_iter().next()).flatten())
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() as u32
}

/// Registers plain test functions with the suite's harness
/// ([`harness`]): `tests!(sync: a, b)`, `tests!(async: a)` for async ones
/// (a current-thread tokio runtime, as `#[tokio::test]`), and
/// `tests!(async_multi_thread: a)` for ones that need two workers. Each is
/// the trial `MODULE::NAME`.
#[macro_export]
macro_rules! tests {
    (sync: $($name:ident),+ $(,)?) => {$(
        const _: () = {
            fn run() {
                $name()
            }
            $crate::testing::inventory::submit! {
                $crate::testing::harness::Case {
                    module: module_path!(), name: stringify!($name), needs: $crate::testing::harness::Needs::Nothing, run,
                }
            }
        };
    )+};
    (async: $($name:ident),+ $(,)?) => {$(
        const _: () = {
            fn run() {
                $crate::testing::harness::block_on(false, $name())
            }
            $crate::testing::inventory::submit! {
                $crate::testing::harness::Case {
                    module: module_path!(), name: stringify!($name), needs: $crate::testing::harness::Needs::Nothing, run,
                }
            }
        };
    )+};
    (async_multi_thread: $($name:ident),+ $(,)?) => {$(
        const _: () = {
            fn run() {
                $crate::testing::harness::block_on(true, $name())
            }
            $crate::testing::inventory::submit! {
                $crate::testing::harness::Case {
                    module: module_path!(), name: stringify!($name), needs: $crate::testing::harness::Needs::Nothing, run,
                }
            }
        };
    )+};
}

/// Registers test functions that need PostgreSQL (they make their own
/// [`ScratchSchema`]): listed as ignored when `LIBOS_TEST_POSTGRES` is not
/// set. `on_postgres!(sync: a)`, `async:`, `async_multi_thread:` as for
/// [`tests!`].
#[macro_export]
macro_rules! on_postgres {
    ($flavour:ident: $($name:ident),+ $(,)?) => {$(
        const _: () = {
            fn run() {
                $crate::testing::harness::require_postgres();
                $crate::on_postgres!(@call $flavour $name)
            }
            $crate::testing::inventory::submit! {
                $crate::testing::harness::Case {
                    module: module_path!(), name: stringify!($name), needs: $crate::testing::harness::Needs::Postgres, run,
                }
            }
        };
    )+};
    (@call sync $name:ident) => { $name() };
    (@call async $name:ident) => { $crate::testing::harness::block_on(false, $name()) };
    (@call async_multi_thread $name:ident) => { $crate::testing::harness::block_on(true, $name()) };
}

/// Turns test functions taking a [`Backend`] into two trials each,
/// `NAME::sqlite` and `NAME::postgres` (the second listed as ignored
/// without `LIBOS_TEST_POSTGRES`): `on_both_stores!(async: a, b)` for async
/// functions, `async_multi_thread:` for ones that need a multi-threaded
/// runtime, and `sync:` for plain ones.
#[macro_export]
macro_rules! on_both_stores {
    ($flavour:ident: $($name:ident),+ $(,)?) => {$(
        mod $name {
            fn sqlite() {
                $crate::on_both_stores!(@call $flavour $name $crate::testing::Backend::Sqlite)
            }
            fn postgres() {
                $crate::testing::harness::require_postgres();
                match $crate::testing::Backend::postgres() {
                    Some(backend) => $crate::on_both_stores!(@call $flavour $name backend),
                    None => unreachable!("LIBOS_TEST_POSTGRES was checked"),
                }
            }
            $crate::testing::inventory::submit! {
                $crate::testing::harness::Case {
                    module: module_path!(), name: "sqlite", needs: $crate::testing::harness::Needs::Nothing, run: sqlite,
                }
            }
            $crate::testing::inventory::submit! {
                $crate::testing::harness::Case {
                    module: module_path!(), name: "postgres", needs: $crate::testing::harness::Needs::Postgres, run: postgres,
                }
            }
        }
    )+};
    (@call sync $name:ident $backend:expr) => { super::$name($backend) };
    (@call async $name:ident $backend:expr) => { $crate::testing::harness::block_on(false, super::$name($backend)) };
    (@call async_multi_thread $name:ident $backend:expr) => {
        $crate::testing::harness::block_on(true, super::$name($backend))
    };
}
