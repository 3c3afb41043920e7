//! The PostgreSQL side of the store: one session per open store, driven on
//! its own thread, listening for other nodes' commits.
//!
//! The session's connection runs on a dedicated thread with a small tokio
//! runtime of its own; callers block on its futures with a plain executor,
//! so the kernel's synchronous API works the same from a tokio worker, a
//! blocking thread or a plain program. That thread also receives
//! `NOTIFY`s: every write that changes a row notifies the store's channel
//! as it commits, and each other session listening wakes its kernel's
//! listeners (a scheduler leases at once instead of at its next poll).
//!
//! Writers do not follow one order, unlike on SQLite: they run at once,
//! `READ COMMITTED`, and what keeps them correct is row locks. A write
//! locks every process row it reads (`FOR UPDATE`, see
//! [`super::processes`]), so two transactions that decide anything about
//! the same process run one after the other; everything else they share
//! is changed by guarded statements (`WHERE generation = ?`, `WHERE
//! status = 'open'`, `uses_left - 1 WHERE uses_left > 0`) that PostgreSQL
//! re-checks on the newest row. A lease claim picks its rows with `FOR
//! UPDATE SKIP LOCKED`, so nodes claim different processes at once. The
//! audit chain, which needed the one order, is appended unsealed and
//! chained after commit by the sealer ([`super::seal`]). Two writes that
//! lock the same rows in opposite orders deadlock; PostgreSQL ends one and
//! it is run again ([`super::pg_tx`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement};

use super::db::{Param, PgParam, postgres_sql};
use super::schema;
use crate::error::{KernelError, OpenError, StoreError};

/// Called on the session thread when another session commits.
pub(crate) type Wake = Arc<dyn Fn() + Send + Sync>;

/// How many times a write that PostgreSQL ended to break a deadlock (or
/// a serialization failure) is tried in all.
pub(crate) const CONFLICT_ATTEMPTS: u32 = 25;

/// Prepared statements kept per session; past this the cache starts over.
const STATEMENT_CACHE: usize = 512;

/// One connection and what belongs to it.
pub(crate) struct Session {
    client: Client,
    statements: RefCell<HashMap<String, Statement>>,
    /// The advisory lock key and notification channel of this store (its
    /// database and schema), so stores side by side do not share them.
    lock_key: i64,
    /// The same, as the first of the two keys the sealer's locks use.
    seal_key: i32,
    channel: String,
    /// The server process serving this session: after a lost COMMIT it may
    /// still be running the transaction (see [`Session::fate`]).
    backend: i32,
    /// Why the connection was lost, once a statement found it gone.
    lost: RefCell<Option<String>>,
    /// Set when a statement failed on a deadlock or a serialization
    /// failure: the transaction can simply be run again.
    conflict: std::cell::Cell<bool>,
}

/// What became of a transaction whose COMMIT went unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// It committed: its result stands.
    Committed,
    /// The server rolled it back: it can be run again.
    Aborted,
    /// Not settled yet: its server process still runs it (and has been told to stop).
    Running,
    /// Too old for the server to remember.
    Forgotten,
}

/// Why a (re)connection failed.
pub(crate) enum ConnectError {
    /// The server could not be reached, or dropped the connection: worth another try.
    Unreachable(String),
    /// It answered, but the store is not usable as it stands (schema gone, newer).
    Refused(OpenError),
}

/// Where a PostgreSQL store lives, and what a reconnect needs.
pub(crate) struct Target {
    config: tokio_postgres::Config,
    /// The URL without its password, for messages.
    pub(crate) display: String,
    /// Commits by other sessions seen so far.
    pub(crate) notified: Arc<AtomicU64>,
    wake: Wake,
}

impl Target {
    pub(crate) fn parse(url: &str, wake: Wake) -> Result<Target, OpenError> {
        let display = redact(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| OpenError::Io {
            path: PathBuf::from(&display),
            reason: format!("not a valid PostgreSQL URL: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // Sessions show as `libos` in `pg_stat_activity` unless the URL names them.
        if config.get_application_name().is_none() {
            config.application_name("libos");
        }
        Ok(Target { config, display, notified: Arc::new(AtomicU64::new(0)), wake })
    }

    /// The configuration of this store's sealer session: the store's,
    /// named apart (`NAME-sealer`), so that it is told from the kernel's
    /// own session in `pg_stat_activity`.
    pub(crate) fn sealer_config(&self) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        let name = config.get_application_name().unwrap_or("libos").to_string();
        config.application_name(format!("{name}-sealer"));
        config
    }

    fn open_err(&self, reason: String) -> OpenError {
        OpenError::Io { path: PathBuf::from(&self.display), reason }
    }

    /// Connects, checks the schema (migrating it with `mode` Create), and listens.
    pub(crate) fn connect(&self, migrate: bool) -> Result<Session, OpenError> {
        self.connect_with(self.config.clone(), Some(migrate)).map_err(|e| match e {
            ConnectError::Unreachable(reason) => self.open_err(reason),
            ConnectError::Refused(e) => e,
        })
    }

    /// Connects again after a loss, giving up connecting after `within`
    /// (or the URL's own, shorter, `connect_timeout`).
    pub(crate) fn reconnect(&self, within: Duration) -> Result<Session, ConnectError> {
        let mut config = self.config.clone();
        if config.get_connect_timeout().is_none_or(|t| *t > within) {
            config.connect_timeout(within);
        }
        self.connect_with(config, None)
    }

    /// Connects and listens; `migrate` says whether to check (and with
    /// `Some(true)` create) the schema under the write order, as at open;
    /// `None` (a reconnect) only reads its version, taking no lock.
    fn connect_with(&self, config: tokio_postgres::Config, migrate: Option<bool>) -> Result<Session, ConnectError> {
        let own_pid = Arc::new(AtomicI32::new(0));
        let client = spawn_connection(config, own_pid.clone(), self.notified.clone(), self.wake.clone())
            .map_err(ConnectError::Unreachable)?;
        let io = |e: tokio_postgres::Error| {
            if is_connection_loss(&e) {
                ConnectError::Unreachable(plain(&e))
            } else {
                ConnectError::Refused(self.open_err(plain(&e)))
            }
        };
        let row = block(client.query_one(
            "SELECT pg_backend_pid(), current_schema(), hashtext(current_database() || '.' || coalesce(current_schema(), ''))",
            &[],
        ))
        .map_err(io)?;
        let backend: i32 = row.get(0);
        own_pid.store(backend, Ordering::Release);
        if row.get::<_, Option<String>>(1).is_none() {
            return Err(ConnectError::Refused(
                self.open_err("no schema on the search_path exists (create it first)".to_string()),
            ));
        }
        let hash: i32 = row.get(2);
        let session = Session {
            client,
            statements: RefCell::new(HashMap::new()),
            lock_key: i64::from(hash),
            seal_key: hash,
            channel: format!("libos_{:08x}", hash as u32),
            backend,
            lost: RefCell::new(None),
            conflict: std::cell::Cell::new(false),
        };
        // A write gives up waiting for another writer after the same time as on SQLite.
        let setup = format!("SET lock_timeout = '{}ms'; LISTEN {}", super::BUSY_TIMEOUT.as_millis(), session.channel);
        block(session.client.batch_execute(&setup)).map_err(io)?;
        let path = Path::new(&self.display);
        let checked = match migrate {
            Some(create) => session.migrate(create, path),
            None => session.check_version(path),
        };
        checked.map_err(|e| match e {
            OpenError::Io { reason, .. } if session.lost().is_some() => ConnectError::Unreachable(reason),
            e => ConnectError::Refused(e),
        })?;
        Ok(session)
    }
}

impl Session {
    /// Why the connection is gone, if it is: a statement failed for want
    /// of it, or the driver saw it close.
    pub(crate) fn lost(&self) -> Option<String> {
        if let Some(reason) = self.lost.borrow().as_ref() {
            return Some(reason.clone());
        }
        self.client.is_closed().then(|| "the connection was closed".to_string())
    }

    /// The server process serving this session.
    pub(crate) fn backend(&self) -> i32 {
        self.backend
    }

    /// The connection, for the sealer's statements.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The first key of the sealer's advisory locks, and the store's
    /// notification channel.
    pub(crate) fn seal_key(&self) -> (i32, &str) {
        (self.seal_key, &self.channel)
    }

    /// Whether the last failure was a deadlock or serialization failure
    /// (and forgets it).
    pub(crate) fn take_conflict(&self) -> bool {
        self.conflict.replace(false)
    }

    /// Turns a driver error into the kernel's, noting a lost connection
    /// or a conflict worth running the transaction again for.
    pub(crate) fn fail(&self, e: &tokio_postgres::Error) -> KernelError {
        use tokio_postgres::error::SqlState;
        if is_connection_loss(e) {
            self.lost.borrow_mut().get_or_insert_with(|| plain(e));
        }
        if e.code().is_some_and(|c| *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
        {
            self.conflict.set(true);
        }
        KernelError::Store(store_err(e))
    }

    /// Brings the schema to this build's version in one transaction, under
    /// the write order, so nodes starting together migrate once.
    fn migrate(&self, create: bool, path: &Path) -> Result<(), OpenError> {
        let c = &self.client;
        let io = |e: tokio_postgres::Error| {
            let _ = self.fail(&e);
            OpenError::Io { path: path.to_path_buf(), reason: plain(&e) }
        };
        block(c.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({})", self.lock_key))).map_err(io)?;
        let run = || -> Result<(), OpenError> {
            let row = block(c.query_one(
                "SELECT count(*), count(*) FILTER (WHERE table_name = 'libos_schema') \
                 FROM information_schema.tables WHERE table_schema = current_schema()",
                &[],
            ))
            .map_err(io)?;
            let (tables, versioned): (i64, i64) = (row.get(0), row.get(1));
            let found: i64 = if versioned > 0 {
                block(c.query_one("SELECT version FROM libos_schema", &[])).map_err(io)?.get(0)
            } else if tables > 0 {
                return Err(OpenError::Foreign(path.to_path_buf()));
            } else if !create {
                return Err(OpenError::Missing(path.to_path_buf()));
            } else {
                block(c.batch_execute(
                    "CREATE TABLE libos_schema (version BIGINT NOT NULL); INSERT INTO libos_schema VALUES (0)",
                ))
                .map_err(io)?;
                0
            };
            let supported = schema::current_version();
            if found > supported {
                return Err(OpenError::TooNew { path: path.to_path_buf(), found, supported });
            }
            for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
                block(c.batch_execute(&schema::postgres_ddl(sql))).map_err(io)?;
                block(c.execute("UPDATE libos_schema SET version = $1", &[&(i as i64 + 1)])).map_err(io)?;
            }
            Ok(())
        };
        match run() {
            Ok(()) => block(c.batch_execute("COMMIT")).map_err(io),
            Err(e) => {
                let _ = block(c.batch_execute("ROLLBACK"));
                Err(e)
            }
        }
    }

    /// Checks that the schema is still the one this build knows (after a
    /// reconnect: the store was open a moment ago).
    fn check_version(&self, path: &Path) -> Result<(), OpenError> {
        let found = match block(self.client.query_one("SELECT version FROM libos_schema", &[])) {
            Ok(row) => row.get::<_, i64>(0),
            Err(e) => {
                let _ = self.fail(&e);
                return Err(match e.code() {
                    Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => OpenError::Missing(path.to_path_buf()),
                    _ => OpenError::Io { path: path.to_path_buf(), reason: plain(&e) },
                });
            }
        };
        let supported = schema::current_version();
        if found == supported {
            Ok(())
        } else if found > supported {
            Err(OpenError::TooNew { path: path.to_path_buf(), found, supported })
        } else {
            Err(OpenError::Io {
                path: path.to_path_buf(),
                reason: format!("schema version {found} is older than this libos ({supported}) (run `libos init`)"),
            })
        }
    }

    /// Starts a transaction: a write at `READ COMMITTED` (taking no lock
    /// of its own, see the module docs), a read with one snapshot.
    pub(crate) fn begin(&self, write: bool) -> Result<(), KernelError> {
        self.batch(if write { "BEGIN" } else { "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" })
    }

    /// Commits; a transaction that changed rows tells the other sessions.
    pub(crate) fn commit(&self, changed: bool) -> Result<(), KernelError> {
        if changed { self.batch(&format!("NOTIFY {}; COMMIT", self.channel)) } else { self.batch("COMMIT") }
    }

    pub(crate) fn rollback(&self) -> Result<(), KernelError> {
        self.batch("ROLLBACK")
    }

    /// The id of the open transaction if it has one (it changed a row),
    /// taken before its COMMIT so that the COMMIT's fate can be looked up
    /// should its answer be lost.
    pub(crate) fn xid(&self) -> Result<Option<u64>, KernelError> {
        let cell = self.cell("SELECT pg_current_xact_id_if_assigned()")?;
        cell.map(|xid| {
            xid.parse().map_err(|_| KernelError::Store(StoreError::Other(format!("transaction id `{xid}`"))))
        })
        .transpose()
    }

    /// Looks up transaction `xid`, which session `backend` was committing
    /// when its connection was lost. While it is still running there (the
    /// server process has not noticed its client is gone; it may be
    /// waiting for a lock), that process is told to end, which settles it:
    /// a commit already under way completes, anything before is rolled back.
    pub(crate) fn fate(&self, xid: u64, backend: i32) -> Result<Fate, KernelError> {
        match self.cell(&format!("SELECT pg_xact_status('{xid}'::xid8)"))?.as_deref() {
            Some("committed") => Ok(Fate::Committed),
            Some("aborted") => Ok(Fate::Aborted),
            None => Ok(Fate::Forgotten),
            Some(_) => {
                // `backend_xid` is the 32-bit form of the id: a server
                // process that has moved on (or a new one with its pid) is
                // left alone. Best effort: without the right to end it,
                // the transaction settles when the server notices.
                let _ = self.batch(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE pid = {backend} AND backend_xid::text = '{}'",
                    xid % (1 << 32)
                ));
                Ok(Fate::Running)
            }
        }
    }

    /// The first column of the first row `sql` returns.
    fn cell(&self, sql: &str) -> Result<Option<String>, KernelError> {
        let messages = block(self.client.simple_query(sql)).map_err(|e| self.fail(&e))?;
        Ok(messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
                _ => None,
            })
            .flatten())
    }

    fn batch(&self, sql: &str) -> Result<(), KernelError> {
        block(self.client.batch_execute(sql)).map_err(|e| self.fail(&e))
    }

    fn statement(&self, sql: &str) -> Result<Statement, KernelError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let stmt = block(self.client.prepare(&postgres_sql(sql))).map_err(|e| self.fail(&e))?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= STATEMENT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    pub(crate) fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, KernelError> {
        let stmt = self.statement(sql)?;
        let values: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.value())).collect();
        block(self.client.execute_raw(&stmt, values.iter())).map_err(|e| self.fail(&e))
    }

    pub(crate) fn scan(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&tokio_postgres::Row) -> Result<bool, KernelError>,
    ) -> Result<(), KernelError> {
        let stmt = self.statement(sql)?;
        let values: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.value())).collect();
        let err = |e: tokio_postgres::Error| self.fail(&e);
        let stream = block(self.client.query_raw(&stmt, values.iter())).map_err(err)?;
        let mut rows = futures_executor::block_on_stream(Box::pin(stream));
        for row in rows.by_ref() {
            if !f(&row.map_err(err)?)? {
                // The rest of the rows are read and dropped so the
                // connection is ready for the next statement.
                for row in rows {
                    row.map_err(err)?;
                }
                break;
            }
        }
        Ok(())
    }
}

/// Connects on a new thread that then drives the connection, forwarding
/// other sessions' notifications; returns the client.
fn spawn_connection(
    config: tokio_postgres::Config,
    own_pid: Arc<AtomicI32>,
    notified: Arc<AtomicU64>,
    wake: Wake,
) -> Result<Client, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new().name("libos-postgres".to_string()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot start the PostgreSQL session thread: {e}");
                return;
            }
        };
        runtime.block_on(async move {
            let (client, mut connection) = match config.connect(NoTls).await {
                Ok(pair) => pair,
                Err(e) => {
                    let _ = tx.send(Err(plain(&e)));
                    return;
                }
            };
            let _ = tx.send(Ok(client));
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if n.process_id() != own_pid.load(Ordering::Acquire) {
                            notified.fetch_add(1, Ordering::AcqRel);
                            wake();
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!("PostgreSQL connection lost: {}", plain(&e));
                        // Whatever other sessions commit from now on goes
                        // unnotified: a scheduler told now reconnects (at
                        // its next transaction) instead of at its next poll.
                        notified.fetch_add(1, Ordering::AcqRel);
                        wake();
                        break;
                    }
                }
            }
        });
    });
    if let Err(e) = thread {
        return Err(format!("cannot start the PostgreSQL session thread: {e}"));
    }
    // The thread ends without a word only if its runtime could not start.
    rx.recv().unwrap_or_else(|_| Err("cannot start the PostgreSQL session thread".to_string()))
}

/// Waits for a future on the calling thread (the connection runs on its own).
pub(crate) fn block<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// A database error as one line, without the driver's prefixes.
pub(crate) fn plain(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

/// Whether `e` means the connection is gone: the driver saw it close or
/// fail, or the server ended the session (SQLSTATE class 08, an
/// administrator's `pg_terminate_backend` or shutdown, a crash, a start-up).
pub(crate) fn is_connection_loss(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => code.code().starts_with("08") || ["57P01", "57P02", "57P03"].contains(&code.code()),
        // A failed read or write on the socket (reset, broken pipe).
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Maps a PostgreSQL error to the cases callers tell apart.
pub(crate) fn store_err(e: &tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    if is_connection_loss(e) {
        return StoreError::Unreachable(plain(e));
    }
    let Some(code) = e.code() else { return StoreError::Other(plain(e)) };
    if [SqlState::LOCK_NOT_AVAILABLE, SqlState::T_R_DEADLOCK_DETECTED, SqlState::T_R_SERIALIZATION_FAILURE]
        .contains(code)
    {
        StoreError::Busy
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        StoreError::ReadOnly
    } else if *code == SqlState::DISK_FULL {
        StoreError::Full
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        StoreError::Corrupt(plain(e))
    } else {
        StoreError::Other(plain(e))
    }
}

/// The URL with any password replaced, for messages and listings.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, host) = match rest.split_once('@') {
        Some((auth, host)) if !auth.contains('/') => (auth, host),
        _ => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://{auth}@{host}"),
    }
}

/// Connects to `url`, runs `sql` (any number of statements) and disconnects.
pub(crate) fn execute_once(url: &str, sql: &str) -> Result<(), String> {
    simple_rows(&plain_client(url)?, sql).map(drop)
}

/// A bare connection with `config` (no schema check), driven on a thread of
/// its own like a session's; every notification it gets calls `wake`.
pub(crate) fn connect_plain(config: tokio_postgres::Config, wake: Wake) -> Result<Client, String> {
    spawn_connection(config, Arc::new(AtomicI32::new(0)), Arc::new(AtomicU64::new(0)), wake)
}

/// A bare connection to `url` (no schema check, no listening), driven on a
/// thread of its own like a session's.
pub(crate) fn plain_client(url: &str) -> Result<Client, String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| e.to_string())?;
    let wake: Wake = Arc::new(|| {});
    spawn_connection(config, Arc::new(AtomicI32::new(0)), Arc::new(AtomicU64::new(0)), wake)
}

/// Runs `sql` (any number of statements) on `client`; returns the rows of
/// its statements, each column as text.
pub(crate) fn simple_rows(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let messages = block(client.simple_query(sql)).map_err(|e| plain(&e))?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}
