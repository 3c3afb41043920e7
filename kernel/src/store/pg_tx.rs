//! Transactions on a PostgreSQL store, and how they ride out a lost
//! connection.
//!
//! A session's connection can go at any time: an administrator's
//! `pg_terminate_backend`, a server restart, a reset socket. Every store
//! call runs its transaction through [`Postgres::run`], which then:
//!
//! 1. drops the lost session and connects again, at once and then with a
//!    backoff, for at most [`RECONNECT_WITHIN`] after the loss;
//! 2. if the loss came before COMMIT was sent, the server has rolled the
//!    transaction back, so it runs the whole of it again on the new
//!    session (the typed operations are closures; they change nothing
//!    outside their transaction);
//! 3. if it came while COMMIT was on its way, the outcome is unknown, so
//!    nothing is run again blindly: the transaction's id, taken before the
//!    COMMIT, is looked up on the new session (`pg_xact_status`). Committed:
//!    the result stands. Rolled back: it is run again. Still running on
//!    the old server process (which has not noticed its client is gone):
//!    that process is ended, which settles it, and it is looked up again.
//!    When it cannot be found out in time, the call fails with
//!    [`StoreError::CommitUnknown`];
//! 4. a server out of reach past the bound makes the call fail with
//!    [`StoreError::Unreachable`], one line, nothing changed.
//!
//! A write that PostgreSQL ended to break a deadlock (two writes locking
//! the same process rows in opposite orders, see [`super::pg`]) is run
//! again the same way, up to [`pg::CONFLICT_ATTEMPTS`] times in all.
//!
//! Opening a store does none of this: a server out of reach at open is an
//! [`crate::error::OpenError`] at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::db::{Chain, Conn, Tx};
use super::pg::{self, ConnectError, Fate, Session};
use super::seal;
use crate::error::{KernelError, StoreError};

/// How long after losing its connection a store call keeps trying to
/// connect again before it gives up (as long as a write waits for a lock).
pub(crate) const RECONNECT_WITHIN: Duration = super::BUSY_TIMEOUT;

/// The first pause between two connection attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// The longest pause between two connection attempts.
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// A PostgreSQL store: where it is, its one session, and its sealer.
pub(crate) struct Postgres {
    pub(crate) target: pg::Target,
    /// `None` after the connection was lost: the next transaction reconnects.
    session: Mutex<Option<Session>>,
    /// The first key of the sealer's advisory locks.
    seal_key: i32,
    /// Whether this handle committed audit records (it seals what is left as it closes).
    appended: AtomicBool,
    _sealer: seal::Sealer,
}

/// How one run of a transaction ended.
enum Attempt<T> {
    /// Done, for better or worse (the connection held, or the work was done).
    Done(Result<T, KernelError>),
    /// The connection was lost before COMMIT was sent: nothing happened.
    Lost(String),
    /// The server ended the transaction to break a deadlock: nothing happened.
    Conflict(KernelError),
    /// The connection was lost while COMMIT was on its way: `xid` tells.
    Unsure { xid: u64, backend: i32, value: T, reason: String },
}

/// The bounded reconnection of one store call.
struct Retry {
    /// When to give up; set at the first loss.
    deadline: Option<Instant>,
    pause: Duration,
}

impl Retry {
    fn new() -> Retry {
        Retry { deadline: None, pause: FIRST_PAUSE }
    }

    fn deadline(&mut self) -> Instant {
        *self.deadline.get_or_insert_with(|| Instant::now() + RECONNECT_WITHIN)
    }

    /// Sleeps before the next attempt, or says there is no time left for one.
    fn pause(&mut self) -> bool {
        let deadline = self.deadline();
        if Instant::now() + self.pause >= deadline {
            return false;
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }
}

impl Postgres {
    pub(crate) fn new(target: pg::Target, session: Session) -> Postgres {
        let (seal_key, channel) = session.seal_key();
        let sealer = seal::Sealer::start(target.sealer_config(), seal_key, channel.to_string());
        Postgres {
            target,
            session: Mutex::new(Some(session)),
            seal_key,
            appended: AtomicBool::new(false),
            _sealer: sealer,
        }
    }

    /// Seals every committed audit record now, on this store's session (a
    /// reader that needs its own records calls it; see [`seal`]). Cheap
    /// when nothing waits: one indexed lookup, no lock.
    pub(crate) fn seal_pending(&self) -> Result<(), KernelError> {
        self.run(|session| {
            let client = session.client();
            let waiting = pg::block(client.query_one("SELECT EXISTS (SELECT 1 FROM audit WHERE seq IS NULL)", &[]))
                .and_then(|row| row.try_get::<_, bool>(0));
            let done = match waiting {
                Ok(false) => Ok(()),
                Ok(true) => seal::seal_all(client, self.seal_key).map(drop),
                Err(e) => Err(e),
            };
            match done {
                Ok(()) => Attempt::Done(Ok(())),
                Err(e) => {
                    let e = session.fail(&e);
                    match session.lost() {
                        Some(reason) => Attempt::Lost(reason),
                        None => Attempt::Done(Err(e)),
                    }
                }
            }
        })
    }

    /// Runs `f` in a write transaction; commits if it returns `Ok`. Also
    /// says whether it changed a row. The audit records it appended are
    /// inserted last, just before the COMMIT (see [`super::audit`]).
    pub(crate) fn write<T>(&self, f: impl Fn(&Tx<'_>) -> Result<T, KernelError>) -> Result<(T, bool), KernelError> {
        self.run(|session| {
            let done = session.begin(true).and_then(|()| {
                let tx = Tx::new(Conn::Postgres(session), Chain::Held);
                let value = f(&tx)?;
                if tx.flush_audit()? {
                    self.appended.store(true, Ordering::Relaxed);
                }
                Ok((value, tx.changed()))
            });
            if let Some(reason) = session.lost() {
                return Attempt::Lost(reason);
            }
            let (value, changed) = match done {
                Ok(done) => done,
                Err(e) => {
                    let _ = session.rollback();
                    if session.take_conflict() {
                        return Attempt::Conflict(e);
                    }
                    return Attempt::Done(Err(e));
                }
            };
            // A transaction that changed nothing has nothing to lose at COMMIT.
            let xid = if changed {
                match (session.xid(), session.lost()) {
                    (Ok(xid), _) => xid,
                    (Err(_), Some(reason)) => return Attempt::Lost(reason),
                    (Err(e), None) => {
                        let _ = session.rollback();
                        return Attempt::Done(Err(e));
                    }
                }
            } else {
                None
            };
            match session.commit(changed) {
                Ok(()) => Attempt::Done(Ok((value, changed))),
                Err(e) => match (session.lost(), xid) {
                    (Some(reason), Some(xid)) => {
                        Attempt::Unsure { xid, backend: session.backend(), value: (value, changed), reason }
                    }
                    (Some(_), None) => Attempt::Done(Ok((value, false))),
                    // The server refused the COMMIT and rolled back.
                    (None, _) => Attempt::Done(Err(e)),
                },
            }
        })
    }

    /// Runs `f` in a read transaction (one snapshot).
    pub(crate) fn read<T>(&self, f: impl Fn(&Tx<'_>) -> Result<T, KernelError>) -> Result<T, KernelError> {
        self.run(|session| {
            let value = session.begin(false).and_then(|()| f(&Tx::new(Conn::Postgres(session), Chain::Read)));
            // Read again rather than trust a value read while the
            // connection went (a closure may have made do without a row).
            if let Some(reason) = session.lost() {
                return Attempt::Lost(reason);
            }
            let ended = session.rollback();
            if let Some(reason) = session.lost() {
                // Ending the snapshot is all that failed: the value stands.
                return match value {
                    Ok(value) => Attempt::Done(Ok(value)),
                    Err(_) => Attempt::Lost(reason),
                };
            }
            Attempt::Done(value.and_then(|value| ended.map(|()| value)))
        })
    }

    /// Runs `f` outside an explicit transaction.
    pub(crate) fn read_unsnapshotted<T>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        self.run(|session| {
            let value = f(&Tx::new(Conn::Postgres(session), Chain::Read));
            match session.lost() {
                Some(reason) => Attempt::Lost(reason),
                None => Attempt::Done(value),
            }
        })
    }

    /// Runs `attempt` on the session until it is done, reconnecting after
    /// a loss (see the module docs).
    fn run<T>(&self, attempt: impl Fn(&Session) -> Attempt<T>) -> Result<T, KernelError> {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let mut retry = Retry::new();
        let mut conflicts = 0;
        loop {
            // Taken out while in use: if `attempt` panics mid-transaction,
            // the session is dropped (the server rolls back) and the next
            // call reconnects.
            let session = match guard.take().filter(|s| s.lost().is_none()) {
                Some(session) => session,
                None => self.reconnect(&mut retry)?,
            };
            match attempt(&session) {
                Attempt::Done(out) => {
                    if session.lost().is_none() {
                        *guard = Some(session);
                    }
                    return out;
                }
                Attempt::Conflict(e) => {
                    *guard = Some(session);
                    conflicts += 1;
                    if conflicts >= pg::CONFLICT_ATTEMPTS {
                        return Err(e);
                    }
                    tracing::debug!("PostgreSQL ended a write to break a deadlock ({e}); running it again");
                }
                Attempt::Lost(reason) => {
                    if Instant::now() >= retry.deadline() {
                        return Err(KernelError::Store(StoreError::Unreachable(reason)));
                    }
                    tracing::warn!("PostgreSQL connection lost mid-transaction ({reason}); running it again");
                }
                Attempt::Unsure { xid, backend, value, reason } => {
                    tracing::warn!("PostgreSQL connection lost during COMMIT ({reason}); looking the transaction up");
                    drop(session);
                    match self.settle(xid, backend, &mut retry) {
                        Ok((Fate::Committed, session)) => {
                            *guard = Some(session);
                            return Ok(value);
                        }
                        Ok((_, session)) => {
                            if Instant::now() >= retry.deadline() {
                                return Err(KernelError::Store(StoreError::Unreachable(reason)));
                            }
                            tracing::warn!("the transaction was rolled back; running it again");
                            *guard = Some(session);
                        }
                        Err(why) => {
                            return Err(KernelError::Store(StoreError::CommitUnknown(format!("{reason}; {why}"))));
                        }
                    }
                }
            }
        }
    }

    /// Connects again, within the call's bound.
    fn reconnect(&self, retry: &mut Retry) -> Result<Session, KernelError> {
        loop {
            let left = retry.deadline().saturating_duration_since(Instant::now());
            match self.target.reconnect(left.max(MAX_PAUSE)) {
                Ok(session) => {
                    // Whatever was committed while disconnected went unnoticed.
                    self.target.notified.fetch_add(1, Ordering::AcqRel);
                    return Ok(session);
                }
                Err(ConnectError::Refused(e)) => return Err(KernelError::Store(StoreError::Other(e.to_string()))),
                Err(ConnectError::Unreachable(reason)) => {
                    if !retry.pause() {
                        return Err(KernelError::Store(StoreError::Unreachable(reason)));
                    }
                }
            }
        }
    }

    /// Finds out whether transaction `xid` committed (see [`Session::fate`]);
    /// `Err` says why it could not be found out in time.
    fn settle(&self, xid: u64, backend: i32, retry: &mut Retry) -> Result<(Fate, Session), String> {
        let mut session = self.reconnect(retry).map_err(|e| e.to_string())?;
        loop {
            match session.fate(xid, backend) {
                Ok(Fate::Committed) => return Ok((Fate::Committed, session)),
                Ok(Fate::Aborted) => return Ok((Fate::Aborted, session)),
                Ok(Fate::Forgotten) => return Err(format!("transaction {xid} is too old to look up")),
                Ok(Fate::Running) => {
                    if !retry.pause() {
                        return Err(format!("transaction {xid} was still running on the server"));
                    }
                }
                Err(_) if session.lost().is_some() => session = self.reconnect(retry).map_err(|e| e.to_string())?,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Drop for Postgres {
    /// A store that appended records seals what is left, best effort and
    /// without reconnecting, so that a short-lived handle (a CLI command)
    /// leaves nothing waiting when no sealer runs elsewhere.
    fn drop(&mut self) {
        if !self.appended.load(Ordering::Relaxed) {
            return;
        }
        let guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(session) = guard.as_ref().filter(|s| s.lost().is_none())
            && let Err(e) = seal::seal_all(session.client(), self.seal_key)
        {
            tracing::debug!("sealing as the store closed failed ({}); the sealer will", pg::plain(&e));
        }
    }
}
