//! The sealer: numbers and chains PostgreSQL's audit records after commit.
//!
//! PostgreSQL writers run at once (see [`super::pg`]), so none of them can
//! read the audit head and append after it: a write inserts its records
//! unsealed (`seq`, `prev_hash` and `hash` NULL) as it ends, with `ord`,
//! its place in commit order, `pos`, each record's place in the
//! transaction, and `digest`, the sha256 of the record's canonical bytes
//! with seq 0. Sealing then, in one transaction:
//!
//! 1. takes the sealing lock (a transaction-scoped advisory lock), so
//!    sealings run one after the other, each after the last one's commit;
//! 2. reads the sealed head, then the unsealed records of the first
//!    [`BATCH`] transactions by `ord`, whole transactions only;
//! 3. orders them by (`ord`, `pos`), checks each against its digest, gives
//!    each the next seq and chains it (`hash = sha256(prev_hash ||
//!    canonical)`, as on SQLite), and commits.
//!
//! **Why that order is commit order, as far as anyone can tell.** A write
//! takes its `ord` (a sequence) in the statement that inserts its records,
//! after everything it read. If a write B read what a write A wrote, A had
//! committed before B read it, so A took its `ord` before B took its own:
//! `ord(A) < ord(B)`; and whenever B is visible to a sealing, A, committed
//! earlier, is too. So A is sealed before B: in an earlier sealing, or in
//! the same one, ordered by `ord`. In particular a process's later
//! quantum is sealed after its earlier one. Two writes neither of which
//! saw the other may be sealed in either order (their `ord` order, or the
//! order their commits became visible, when the later `ord` committed
//! first): both are a serial order of what happened. A transaction's
//! records stay together, in the order it appended them, whatever ids
//! concurrent writers interleave with them; an approval's binding (a park
//! record and the request record after it, see `kernel::binding`) relies
//! on that.
//!
//! **Who seals.** Any session may ([`seal`] is safe to run anywhere, at any
//! time: the sealing lock orders it), and readers that need their own
//! records do, before they read (`Store::seal_pending`). One session per
//! store seals routinely: the [`Sealer`] that holds the election lock, a
//! session-level advisory lock, which the server releases as soon as that
//! session ends (its node died, was cut off, or shut down). Every open
//! store runs a sealer thread on a connection of its own; the one not
//! elected tries again every [`ELECTION_RETRY`], so another takes over
//! within that. The elected one seals when a commit is notified (every
//! write notifies the store's channel) and at least every [`SEAL_BOUND`].
//!
//! **What protects an unsealed record.** Its digest: the sealer refuses to
//! seal a record that does not match it (it stops before that record's
//! transaction and says so in the log) and `audit verify` reports it. A
//! record deleted before it is sealed leaves no trace, like a record cut
//! from the end of the chain: that is what `audit head`, kept elsewhere,
//! is for, and the window is the sealing delay (milliseconds).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio_postgres::Client;

use super::pg;
use crate::audit::verify::unsealed_digest;
use crate::audit::{AuditRow, GENESIS, canonical_bytes, chain_hash};

/// The most transactions one sealing takes.
pub(crate) const BATCH: i64 = 2_000;

/// How often the elected sealer seals without being told of a commit.
pub(crate) const SEAL_BOUND: Duration = Duration::from_millis(100);

/// How often a sealer not elected tries to be.
pub(crate) const ELECTION_RETRY: Duration = Duration::from_millis(250);

/// The second key of the election lock (a session-level advisory lock).
const ELECTION: i32 = 1;

/// The second key of the sealing lock (a transaction-scoped advisory lock).
const SEALING: i32 = 2;

const PENDING: &str = "SELECT id, ord, pos, at, actor, kind, action, pid, args, args_sha256, decision, grant_id, \
     outcome, result_digest, detail, digest FROM audit \
     WHERE seq IS NULL AND ord IN (SELECT DISTINCT ord FROM audit WHERE seq IS NULL ORDER BY ord LIMIT $1) \
     ORDER BY ord, pos, id";

const HEAD: &str = "SELECT seq, hash FROM audit WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1";

const SET: &str = "UPDATE audit SET seq = v.seq, prev_hash = v.prev, hash = v.hash \
     FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS v (id, seq, prev, hash) \
     WHERE audit.id = v.id AND audit.seq IS NULL";

/// What one sealing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Sealed {
    /// Records numbered and chained.
    pub(crate) records: u64,
    /// A full batch was taken: there may be more.
    pub(crate) more: bool,
    /// The row id of a record that did not match its digest: sealing
    /// stopped before its transaction.
    pub(crate) altered: Option<i64>,
}

/// An unsealed record as read for sealing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) id: i64,
    pub(crate) ord: i64,
    pub(crate) pos: i32,
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) kind: String,
    pub(crate) action: String,
    pub(crate) pid: Option<i64>,
    pub(crate) args: String,
    pub(crate) args_sha256: String,
    pub(crate) decision: Option<String>,
    pub(crate) grant: Option<i64>,
    pub(crate) outcome: String,
    pub(crate) result_digest: Option<String>,
    pub(crate) detail: Option<String>,
    pub(crate) digest: Option<String>,
}

impl Pending {
    fn row(&self, seq: i64) -> AuditRow<'_> {
        AuditRow {
            seq,
            at: self.at,
            actor: &self.actor,
            kind: &self.kind,
            action: &self.action,
            pid: self.pid,
            args: &self.args,
            args_sha256: &self.args_sha256,
            decision: self.decision.as_deref(),
            grant: self.grant,
            outcome: &self.outcome,
            result_digest: self.result_digest.as_deref(),
            detail: self.detail.as_deref(),
            prev_hash: "",
            hash: "",
        }
    }
}

/// A sealed record: its row id, seq, `prev_hash` and `hash`.
pub(crate) type Link = (i64, i64, String, String);

/// Each pending record's [`Link`] after `head`, in seal
/// order: by transaction (`ord`), then place in it (`pos`); ids, which
/// concurrent writers interleave, decide nothing. Stops before the
/// transaction of the first record that does not match its digest, and
/// names it.
pub(crate) fn chain(mut rows: Vec<Pending>, head: (i64, String)) -> (Vec<Link>, Option<i64>) {
    rows.sort_by_key(|r| (r.ord, r.pos, r.id));
    let mut buf = Vec::with_capacity(512);
    let altered = rows.iter().find(|r| r.digest.as_deref() != Some(unsealed_digest(&r.row(0), &mut buf).as_str()));
    let (stop, altered) = match altered {
        Some(bad) => (rows.iter().position(|r| r.ord == bad.ord).unwrap_or(0), Some(bad.id)),
        None => (rows.len(), None),
    };
    let (mut seq, mut prev) = head;
    let mut out = Vec::with_capacity(stop);
    for r in &rows[..stop] {
        seq += 1;
        canonical_bytes(&r.row(seq), &mut buf);
        let hash = chain_hash(&prev, &buf);
        out.push((r.id, seq, std::mem::replace(&mut prev, hash.clone()), hash));
    }
    (out, altered)
}

/// Seals up to [`BATCH`] committed transactions' records on `client` (any
/// session of the store whose advisory keys start with `key`), in one
/// transaction. Safe anywhere, any time (see the module docs).
pub(crate) fn seal(client: &Client, key: i32) -> Result<Sealed, tokio_postgres::Error> {
    pg::block(client.batch_execute("BEGIN"))?;
    let run = || -> Result<Option<Sealed>, tokio_postgres::Error> {
        pg::block(client.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&key, &SEALING]))?;
        // Read after the lock: the last sealing's commit is visible.
        let head = match pg::block(client.query_opt(HEAD, &[]))? {
            Some(row) => (row.try_get(0)?, row.try_get(1)?),
            None => (0, GENESIS.to_string()),
        };
        let rows = pg::block(client.query(PENDING, &[&BATCH]))?;
        let mut pending = Vec::with_capacity(rows.len());
        let mut transactions = 0;
        for row in &rows {
            let p = Pending {
                id: row.try_get(0)?,
                ord: row.try_get(1)?,
                pos: row.try_get(2)?,
                at: row.try_get(3)?,
                actor: row.try_get(4)?,
                kind: row.try_get(5)?,
                action: row.try_get(6)?,
                pid: row.try_get(7)?,
                args: row.try_get(8)?,
                args_sha256: row.try_get(9)?,
                decision: row.try_get(10)?,
                grant: row.try_get(11)?,
                outcome: row.try_get(12)?,
                result_digest: row.try_get(13)?,
                detail: row.try_get(14)?,
                digest: row.try_get(15)?,
            };
            if pending.last().is_none_or(|last: &Pending| last.ord != p.ord) {
                transactions += 1;
            }
            pending.push(p);
        }
        let (sealed, altered) = chain(pending, head);
        if let Some(id) = altered {
            tracing::error!(
                "audit record {id} does not match its digest (it was altered before it was sealed): \
                 sealing stops before it; `libos audit verify` reports it"
            );
        }
        if sealed.is_empty() {
            return Ok(Some(Sealed { records: 0, more: false, altered }));
        }
        let n = sealed.len();
        let (mut ids, mut seqs, mut prevs, mut hashes) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for (id, seq, prev, hash) in sealed {
            ids.push(id);
            seqs.push(seq);
            prevs.push(prev);
            hashes.push(hash);
        }
        let set = pg::block(client.execute(SET, &[&ids, &seqs, &prevs, &hashes]))?;
        if set != n as u64 {
            // Only a change behind the sealer's back can do this.
            tracing::error!("sealing found {set} of {n} audit records still unsealed; sealing nothing");
            return Ok(None);
        }
        Ok(Some(Sealed { records: n as u64, more: altered.is_none() && transactions >= BATCH, altered }))
    };
    match run() {
        Ok(Some(sealed)) => pg::block(client.batch_execute("COMMIT")).map(|()| sealed),
        Ok(None) => pg::block(client.batch_execute("ROLLBACK")).map(|()| Sealed::default()),
        Err(e) => {
            let _ = pg::block(client.batch_execute("ROLLBACK"));
            Err(e)
        }
    }
}

/// Seals until nothing committed is left (or an altered record stops it).
pub(crate) fn seal_all(client: &Client, key: i32) -> Result<u64, tokio_postgres::Error> {
    let mut total = 0;
    loop {
        let sealed = seal(client, key)?;
        total += sealed.records;
        if !sealed.more {
            return Ok(total);
        }
    }
}

/// What the sealer thread and its handle share.
#[derive(Default)]
struct Signal {
    state: Mutex<Flags>,
    changed: Condvar,
}

#[derive(Default)]
struct Flags {
    stop: bool,
    /// A commit was notified since the last sealing.
    dirty: bool,
}

impl Signal {
    fn set(&self, f: impl FnOnce(&mut Flags)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_all();
    }

    /// Waits up to `bound` (or until told of a commit, if `on_commit`);
    /// false once the sealer is to stop.
    fn wait(&self, bound: Duration, on_commit: bool) -> bool {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut flags, _) = self
            .changed
            .wait_timeout_while(guard, bound, |f| !(f.stop || on_commit && f.dirty))
            .unwrap_or_else(|e| e.into_inner());
        flags.dirty = false;
        !flags.stop
    }

    fn stopped(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stop
    }
}

/// A store's sealer thread (see the module docs); stops when dropped,
/// which releases the election if it held it.
pub(crate) struct Sealer {
    signal: Arc<Signal>,
}

impl Sealer {
    /// Starts the thread, which connects with `config` (its own session,
    /// named after the store's with `-sealer`), runs for the election on
    /// `key`, and once elected listens on `channel`.
    pub(crate) fn start(config: tokio_postgres::Config, key: i32, channel: String) -> Sealer {
        let signal = Arc::new(Signal::default());
        let shared = signal.clone();
        let spawned = std::thread::Builder::new()
            .name("libos-sealer".to_string())
            .spawn(move || run(config, key, &channel, &shared));
        if let Err(e) = spawned {
            // Readers still seal what they read, and every write's store seals as it closes.
            tracing::error!("cannot start the audit sealer thread: {e}");
        }
        Sealer { signal }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.signal.set(|f| f.stop = true);
    }
}

/// The sealer thread: (re)connect, run for the election, seal while elected.
fn run(config: tokio_postgres::Config, key: i32, channel: &str, signal: &Arc<Signal>) {
    let mut pause = Duration::from_millis(50);
    while !signal.stopped() {
        let wake: pg::Wake = {
            let signal = Arc::downgrade(signal);
            Arc::new(move || {
                if let Some(s) = signal.upgrade() {
                    s.set(|f| f.dirty = true);
                }
            })
        };
        let client = match pg::connect_plain(config.clone(), wake) {
            Ok(client) => client,
            Err(e) => {
                tracing::debug!("the audit sealer cannot connect ({e}); trying again");
                if !signal.wait(pause, false) {
                    return;
                }
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        pause = Duration::from_millis(50);
        if let Err(e) = serve(&client, key, channel, signal) {
            tracing::warn!("the audit sealer lost its session ({}); connecting again", pg::plain(&e));
        }
    }
}

/// One session of the sealer thread, until it is lost (`Err`) or stopped (`Ok`).
fn serve(client: &Client, key: i32, channel: &str, signal: &Signal) -> Result<(), tokio_postgres::Error> {
    let mut elected = false;
    loop {
        if !elected {
            elected =
                pg::block(client.query_one("SELECT pg_try_advisory_lock($1, $2)", &[&key, &ELECTION]))?.try_get(0)?;
            if elected {
                // Only the elected sealer listens: the others would be woken for nothing.
                pg::block(client.batch_execute(&format!("LISTEN {channel}")))?;
                tracing::debug!("this store's audit sealer is elected");
            }
        }
        if elected {
            seal_all(client, key)?;
        }
        let going = if elected { signal.wait(SEAL_BOUND, true) } else { signal.wait(ELECTION_RETRY, false) };
        if !going {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::{Pending, chain};
    use crate::audit::verify::unsealed_digest;
    use crate::audit::{AuditRow, GENESIS, canonical_bytes, chain_hash};

    /// A record of transaction `ord` at place `pos`, with row id `id`.
    fn pending(id: i64, ord: i64, pos: i32) -> Pending {
        let mut p = Pending {
            id,
            ord,
            pos,
            at: 1_000 + id,
            actor: "kernel".to_string(),
            kind: "kernel".to_string(),
            action: format!("a{id}"),
            pid: None,
            args: "{}".to_string(),
            args_sha256: "x".to_string(),
            decision: None,
            grant: None,
            outcome: "ok".to_string(),
            result_digest: None,
            detail: None,
            digest: None,
        };
        p.digest = Some(unsealed_digest(&p.row(0), &mut Vec::new()));
        p
    }

    /// Two writers whose ids interleave (they appended at the same time)
    /// are sealed one transaction after the other, in `ord` order, each in
    /// the order it appended, and the result is a chain.
    #[test]
    fn interleaved_transactions_are_sealed_whole_and_in_commit_order() {
        // Transaction 7 took ids 10 and 12, transaction 6 took 11 and 13
        // (and ended first); 8 has one record, appended with a reserved id.
        let rows = vec![pending(10, 7, 0), pending(11, 6, 0), pending(12, 7, 1), pending(13, 6, 1), pending(3, 8, 0)];
        let (sealed, altered) = chain(rows.clone(), (41, "h41".to_string()));
        assert_eq!(altered, None);
        let order: Vec<(i64, i64)> = sealed.iter().map(|(id, seq, _, _)| (*id, *seq)).collect();
        assert_eq!(order, [(11, 42), (13, 43), (10, 44), (12, 45), (3, 46)]);
        // Each links to the one before and hashes as verification expects.
        let mut prev = "h41".to_string();
        for (id, seq, prev_hash, hash) in &sealed {
            assert_eq!(prev_hash, &prev);
            let row = rows.iter().find(|r| r.id == *id).unwrap();
            let mut buf = Vec::new();
            canonical_bytes(&AuditRow { prev_hash, hash, ..row.row(*seq) }, &mut buf);
            assert_eq!(hash, &chain_hash(prev_hash, &buf));
            prev = hash.clone();
        }
    }

    /// A record altered before sealing stops sealing before its
    /// transaction, which is left whole, and is named.
    #[test]
    fn an_altered_record_stops_sealing_before_its_transaction() {
        let mut rows = vec![pending(1, 1, 0), pending(2, 2, 0), pending(3, 2, 1), pending(4, 3, 0)];
        rows[2].detail = Some("forged".to_string());
        let (sealed, altered) = chain(rows, (0, GENESIS.to_string()));
        assert_eq!(altered, Some(3));
        assert_eq!(sealed.iter().map(|(id, seq, _, _)| (*id, *seq)).collect::<Vec<_>>(), [(1, 1)]);
    }
}
