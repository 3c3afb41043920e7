//! The one place with SQL: a store behind typed operations run in transactions.
//!
//! [`Store::write`] runs a closure in a write transaction and commits only if
//! the closure returns `Ok`; [`Store::read`] runs one in a read transaction, a
//! consistent snapshot. Every operation on [`Tx`] takes and returns domain
//! types and is written once against the narrow interface in [`db`], so the
//! same code runs on SQLite (the embedded default) and on PostgreSQL (shared
//! by several scheduler nodes); no database type leaves this module.

mod audit;
mod caps;
mod checkpoint;
mod db;
mod group;
mod ipc;
mod logs;
mod memory;
pub(crate) mod pg;
mod pg_tx;
mod processes;
mod schema;
mod seal;
mod state_row;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::error::{KernelError, OpenError, StoreError};

pub(crate) use audit::{Appended, AuditRef};
pub(crate) use db::Tx;
use db::{Chain, Conn};
pub(crate) use ipc::ParkedCall;
pub(crate) use pg::Wake;
pub use schema::current_version as schema_version;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A private in-memory store (embedded experiments, tests).
    Memory,
    /// An SQLite file in WAL mode.
    File(PathBuf),
    /// A URL (`postgres://...`): never taken for a file path.
    Url(String),
}

impl StoreLocation {
    /// `:memory:`, a URL (`scheme://...`), or a path.
    pub fn parse(text: &str) -> StoreLocation {
        if text == ":memory:" {
            StoreLocation::Memory
        } else if text.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }) {
            StoreLocation::Url(text.to_string())
        } else {
            StoreLocation::File(PathBuf::from(text))
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Memory => f.write_str(":memory:"),
            StoreLocation::File(p) => write!(f, "{}", p.display()),
            StoreLocation::Url(u) => f.write_str(&pg::redact(u)),
        }
    }
}

/// Whether opening may create a new store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file (and its directory) if missing.
    Create,
    /// Fail with [`OpenError::Missing`] if the file does not exist.
    Existing,
}

/// How much a commit to an SQLite file survives before it is answered
/// (SQLite's `synchronous` setting; PostgreSQL has its own,
/// `synchronous_commit`, set on the server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = NORMAL`, the default: a commit is in the WAL file
    /// when answered, synced to disk at the next checkpoint. It survives a
    /// crash of the process (the operating system has the file); a power
    /// loss or a crash of the machine may lose the last commits, never
    /// consistency (the store opens at an earlier commit, chain intact).
    #[default]
    Normal,
    /// `synchronous = FULL`: every COMMIT syncs the WAL before it is
    /// answered, so it also survives a power loss. Group commit shares one
    /// sync among the writes that arrive together.
    Full,
}

impl Durability {
    /// `normal` or `full`, as `--sync` and `LIBOS_SYNC` take it.
    pub fn parse(text: &str) -> Result<Durability, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Durability::Normal),
            "full" => Ok(Durability::Full),
            other => Err(format!("unknown durability `{other}` (expected `normal` or `full`)")),
        }
    }

    /// The name `parse` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Normal => "normal",
            Durability::Full => "full",
        }
    }
}

/// What [`crate::Kernel::group_stats`] reports: how the SQLite store's group commit has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    /// Writes waiting for the connection at this moment.
    pub waiting: usize,
    /// Write transactions committed (each a group of one or more writes).
    pub transactions: u64,
    /// Writes those transactions held.
    pub writes: u64,
}

/// An open store.
pub(crate) struct Store {
    backend: Backend,
    /// Commits made through this handle; with the database's own counter it
    /// tells a poller something changed.
    local_commits: AtomicU64,
}

enum Backend {
    Sqlite(Sqlite),
    Postgres(Box<pg_tx::Postgres>),
}

struct Sqlite {
    /// The one connection, and the group commit on it (see [`group`]).
    writer: Box<group::Writer>,
    path: Option<PathBuf>,
    /// Declared after `conn` so that it stops after the main connection closes
    /// (the last close checkpoints the WAL itself).
    checkpointer: Option<checkpoint::Checkpointer>,
}

/// How long a write waits for another writer's lock (named in [`StoreError::Busy`]).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a URL names a PostgreSQL database.
fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Store {
    /// Opens a store. `wake` is called (on another thread) whenever another
    /// process commits to a PostgreSQL store; SQLite has no such signal and
    /// is polled through [`Store::change_token`].
    pub(crate) fn open(
        location: &StoreLocation,
        mode: OpenMode,
        durability: Durability,
        wake: Wake,
    ) -> Result<Store, OpenError> {
        let backend = match location {
            StoreLocation::Url(url) if is_postgres_url(url) => {
                let target = pg::Target::parse(url, wake)?;
                let session = target.connect(mode == OpenMode::Create)?;
                Backend::Postgres(Box::new(pg_tx::Postgres::new(target, session)))
            }
            StoreLocation::Url(url) => return Err(OpenError::Unsupported(pg::redact(url))),
            _ => Backend::Sqlite(Sqlite::open(location, mode, durability)?),
        };
        Ok(Store { backend, local_commits: AtomicU64::new(0) })
    }

    /// The database file, if any (the kernel keeps tools away from it).
    pub(crate) fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(s) => s.path.as_deref(),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs `f` in a write transaction; commits if it returns `Ok`, rolls
    /// back otherwise. Also says whether the transaction changed any row, so
    /// that a write that found nothing to do wakes nobody. On PostgreSQL `f`
    /// may run more than once: a transaction cut off by a lost connection
    /// is run again on a new one (see [`pg_tx`]).
    pub(crate) fn write<T>(&self, f: impl Fn(&Tx<'_>) -> Result<T, KernelError>) -> Result<(T, bool), KernelError> {
        self.write_as(f)
    }

    /// [`Store::write`] for a lease claim. The same transaction on both
    /// stores: on PostgreSQL the claim picks its rows with `FOR UPDATE SKIP
    /// LOCKED` (see [`pg`]), which needs nothing of the store itself.
    pub(crate) fn write_claim<T>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, KernelError>,
    ) -> Result<(T, bool), KernelError> {
        self.write_as(f)
    }

    fn write_as<T>(&self, f: impl Fn(&Tx<'_>) -> Result<T, KernelError>) -> Result<(T, bool), KernelError> {
        let (value, changed) = match &self.backend {
            Backend::Sqlite(s) => s.write(f)?,
            Backend::Postgres(p) => p.write(f)?,
        };
        if changed {
            let n = self.local_commits.fetch_add(1, Ordering::Release) + 1;
            if let Backend::Sqlite(Sqlite { checkpointer: Some(c), .. }) = &self.backend
                && n.is_multiple_of(checkpoint::NUDGE_EVERY)
            {
                c.nudge();
            }
        }
        Ok((value, changed))
    }

    /// Runs `f` in a read transaction (one consistent snapshot); like a
    /// write, it may run again after a lost connection.
    pub(crate) fn read<T>(&self, f: impl Fn(&Tx<'_>) -> Result<T, KernelError>) -> Result<T, KernelError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let mut slot = s.writer.idle();
                let tx = slot.conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(store_err)?;
                let value = f(&Tx::new(Conn::Sqlite(&tx), Chain::Read))?;
                // A read transaction has nothing to commit; ending it releases the snapshot.
                tx.rollback().map_err(store_err)?;
                Ok(value)
            }
            Backend::Postgres(p) => p.read(f),
        }
    }

    /// Runs `f` outside an explicit transaction: each statement sees the
    /// latest commits, and there is no `BEGIN`/`ROLLBACK` to pay for.
    pub(crate) fn read_unsnapshotted<T>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let slot = s.writer.idle();
                f(&Tx::new(Conn::Sqlite(&slot.conn), Chain::Read))
            }
            Backend::Postgres(p) => p.read_unsnapshotted(f),
        }
    }

    /// Runs `f` in a read transaction on a fresh read-only connection to the
    /// same file, so that several threads can read at once. `None` for an
    /// in-memory store, which has no second connection to open, and for
    /// PostgreSQL, whose one session streams the rows.
    pub(crate) fn read_on_new_connection<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, KernelError>,
    ) -> Option<Result<T, KernelError>> {
        let Backend::Sqlite(s) = &self.backend else { return None };
        let path = s.path.as_ref()?;
        let run = || -> Result<T, KernelError> {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let mut conn = Connection::open_with_flags(path, flags).map_err(store_err)?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(store_err)?;
            // Scans read every page once: mapping the file saves a copy and a
            // syscall per page.
            conn.execute_batch("PRAGMA mmap_size = 1073741824").map_err(store_err)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(store_err)?;
            let value = f(&Tx::new(Conn::Sqlite(&tx), Chain::Read))?;
            tx.rollback().map_err(store_err)?;
            Ok(value)
        };
        Some(run())
    }

    /// Seals every committed audit record now (PostgreSQL, see [`seal`]);
    /// nothing to do on SQLite, which chains records as they are appended.
    pub(crate) fn seal_pending(&self) -> Result<(), KernelError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(p) => p.seal_pending(),
        }
    }

    /// The group commit's figures: writes waiting for the connection now,
    /// transactions committed and the writes they held. `None` on
    /// PostgreSQL, where every write is its own transaction.
    pub(crate) fn group_stats(&self) -> Option<GroupStats> {
        let Backend::Sqlite(s) = &self.backend else { return None };
        let (waiting, transactions, writes) = s.writer.stats();
        Some(GroupStats { waiting, transactions, writes })
    }

    /// A token that changes whenever anyone (this handle or another process) commits.
    pub(crate) fn change_token(&self) -> Result<u64, KernelError> {
        let external = match &self.backend {
            Backend::Sqlite(s) => {
                let slot = s.writer.idle();
                let v: i64 = slot.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(store_err)?;
                v as u64
            }
            // Counted as their notifications arrive: no query at all.
            Backend::Postgres(p) => p.target.notified.load(Ordering::Acquire),
        };
        Ok(external.wrapping_add(self.local_commits.load(Ordering::Acquire)))
    }
}

impl Sqlite {
    fn open(location: &StoreLocation, mode: OpenMode, durability: Durability) -> Result<Sqlite, OpenError> {
        let (conn, path) = match location {
            StoreLocation::File(path) => (open_file(path, mode)?, Some(path.clone())),
            _ => {
                let conn = Connection::open_in_memory()
                    .map_err(|e| OpenError::Io { path: PathBuf::from(":memory:"), reason: e.to_string() })?;
                (conn, None)
            }
        };
        let display = path.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
        let io = |e: rusqlite::Error| classify_open(&display, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(io)?;
        if path.is_some() {
            // Only a new file takes the page size (existing stores keep theirs).
            // Small pages make each commit write fewer WAL bytes: a quantum
            // touches a handful of rows on different pages.
            conn.execute_batch("PRAGMA page_size = 2048").map_err(io)?;
            // Fails with NOTADB before anything is written if the file is not SQLite.
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(io)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(OpenError::Io {
                    path: display,
                    reason: format!("could not switch to WAL mode (journal mode is {mode})"),
                });
            }
            let sync = match durability {
                Durability::Normal => "PRAGMA synchronous = NORMAL",
                Durability::Full => "PRAGMA synchronous = FULL",
            };
            conn.execute_batch(sync).map_err(io)?;
        }
        conn.execute_batch("PRAGMA foreign_keys = ON").map_err(io)?;
        // Every typed operation keeps its statement prepared; the default of 16 evicts some each quantum.
        conn.set_prepared_statement_cache_capacity(256);
        migrate(&conn, &display)?;
        let checkpointer = path.as_deref().and_then(checkpoint::Checkpointer::start);
        if checkpointer.is_some() {
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0").map_err(io)?;
        }
        Ok(Sqlite { writer: Box::new(group::Writer::new(conn)), path, checkpointer })
    }

    fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, KernelError>) -> Result<(T, bool), KernelError> {
        self.writer.write(f)
    }
}

fn open_file(path: &Path, mode: OpenMode) -> Result<Connection, OpenError> {
    let io = |reason: String| OpenError::Io { path: path.to_path_buf(), reason };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(OpenError::IsDirectory(path.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if mode == OpenMode::Existing {
                return Err(OpenError::Missing(path.to_path_buf()));
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| io(format!("cannot create directory {}: {}", dir.display(), plain_io(&e))))?;
            }
        }
        Err(e) => return Err(io(plain_io(&e))),
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    Connection::open_with_flags(path, flags).map_err(|e| classify_open(path, e))
}

fn plain_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string().to_lowercase(),
    }
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), OpenError> {
    let io = |e: rusqlite::Error| classify_open(path, e);
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(io)?;
    let supported = schema::current_version();
    if found > supported {
        return Err(OpenError::TooNew { path: path.to_path_buf(), found, supported });
    }
    if found == supported {
        return Ok(());
    }
    if found == 0 {
        let tables: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0)).map_err(io)?;
        if tables > 0 {
            return Err(OpenError::Foreign(path.to_path_buf()));
        }
    }
    // All pending migrations and the version bump commit together or not at all.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(io)?;
    let run = || -> Result<(), rusqlite::Error> {
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
            conn.execute_batch(&schema::sqlite_ddl(sql))?;
            conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        }
        conn.execute_batch("COMMIT")
    };
    if let Err(e) = run() {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(io(e));
    }
    Ok(())
}

fn classify_open(path: &Path, e: rusqlite::Error) -> OpenError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => OpenError::NotADatabase(path.to_path_buf()),
        _ => OpenError::Io { path: path.to_path_buf(), reason: store_err(e).to_string() },
    }
}

/// Maps a database error to the cases callers tell apart.
pub(crate) fn store_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
        Some(ErrorCode::DiskFull) => StoreError::Full,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt(e.to_string()),
        Some(ErrorCode::CannotOpen) => StoreError::Other(format!("cannot open the database file: {e}")),
        _ => StoreError::Other(e.to_string()),
    }
}
