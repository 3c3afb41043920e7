//! Audit rows: append inside the caller's transaction, query, and stream for verification.
//!
//! On SQLite a write holds the store's one write lock, so an append reads
//! the head and chains the record at once. On PostgreSQL writers overlap:
//! an append only collects the record, and as the transaction ends its
//! records are inserted unsealed (no seq, no hashes) in one statement that
//! also takes the transaction's place in commit order; the sealer (see
//! [`super::seal`]) numbers and chains them shortly after. Readers see the
//! sealed chain only (`seq IS NOT NULL`).

use std::sync::LazyLock;

use super::Tx;
use super::db::{Param, Row, Value};
use crate::audit::verify::{Verifier, unsealed_digest};
use crate::audit::{
    AuditDecision, AuditDraft, AuditFilter, AuditRecord, AuditRow, COLUMNS, GENESIS, bound_args, canonical_bytes,
    chain_hash, sha256_hex,
};
use crate::error::{KernelError, StoreError};
use crate::ids::{AuditSeq, GrantId, Pid};
use crate::time::Timestamp;

/// Where an audit record is, for the rows that refer to it (a request, an
/// effect): its seq on SQLite; on PostgreSQL its row id, which it keeps
/// when it is sealed (a record chained before the sealer existed has its
/// seq as its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuditRef(pub(crate) i64);

impl std::fmt::Display for AuditRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What an append tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Appended {
    /// The sha256 of the record's full canonical arguments.
    pub(crate) args_sha256: String,
}

/// A record collected by a PostgreSQL write, inserted as its transaction ends.
pub(crate) struct Unsealed {
    /// Its row id when the caller needed one at once ([`Tx::append_audit_ref`]).
    id: Option<i64>,
    /// The record's text.
    stored: Stored,
    /// sha256 of its canonical bytes (with seq 0).
    digest: String,
}

/// The columns an unsealed row is inserted with, in the order of [`flush_sql`]'s values.
const UNSEALED_COLUMNS: [(&str, &str); 15] = [
    ("id", "bigint"),
    ("pos", "integer"),
    ("at", "bigint"),
    ("actor", "text"),
    ("kind", "text"),
    ("action", "text"),
    ("pid", "bigint"),
    ("args", "text"),
    ("args_sha256", "text"),
    ("decision", "text"),
    ("grant_id", "bigint"),
    ("outcome", "text"),
    ("result_digest", "text"),
    ("detail", "text"),
    ("digest", "text"),
];

/// The statement inserting `n` unsealed records: one `ord` for all of
/// them, taken once (a materialized CTE), as the transaction ends.
fn flush_sql(n: usize) -> String {
    let names: Vec<&str> = UNSEALED_COLUMNS.iter().map(|(c, _)| *c).collect();
    let typed: Vec<String> = UNSEALED_COLUMNS.iter().map(|(_, t)| format!("?::{t}")).collect();
    let row = format!("({})", typed.join(", "));
    let values = vec![row; n].join(", ");
    let rest = &names[1..];
    format!(
        "WITH o AS MATERIALIZED (SELECT nextval('audit_ord') AS ord) \
         INSERT INTO audit (id, ord, {}) \
         SELECT coalesce(v.id, nextval('audit_id')), o.ord, {} FROM o, (VALUES {values}) AS v ({})",
        rest.join(", "),
        rest.iter().map(|c| format!("v.{c}")).collect::<Vec<_>>().join(", "),
        names.join(", "),
    )
}

/// A draft as the audit table stores it: each field the text its row and
/// its canonical bytes hold (the one place a draft becomes that text), all
/// but the seq and hashes, which depend on where it is chained.
pub(crate) struct Stored {
    at: i64,
    actor: String,
    kind: &'static str,
    action: String,
    pid: Option<i64>,
    args: String,
    args_sha256: String,
    decision: Option<&'static str>,
    grant: Option<i64>,
    outcome: &'static str,
    result_digest: Option<String>,
    detail: Option<String>,
}

impl Stored {
    fn of(draft: &AuditDraft, now: Timestamp) -> Stored {
        let (args, args_sha256) = bound_args(&draft.args);
        Stored {
            at: now.micros(),
            actor: draft.actor.to_string(),
            kind: draft.kind.as_str(),
            action: draft.action.as_str().to_string(),
            pid: draft.pid.map(Pid::get),
            args,
            args_sha256,
            decision: draft.decision.map(AuditDecision::as_str),
            grant: draft.grant.map(GrantId::get),
            outcome: draft.outcome.as_str(),
            result_digest: draft.result.as_deref().map(|r| sha256_hex(r.as_bytes())),
            detail: draft.detail.clone(),
        }
    }

    /// The row at `seq`, after `prev_hash`, with `hash`.
    fn row<'a>(&'a self, seq: i64, prev_hash: &'a str, hash: &'a str) -> AuditRow<'a> {
        AuditRow {
            seq,
            at: self.at,
            actor: &self.actor,
            kind: self.kind,
            action: &self.action,
            pid: self.pid,
            args: &self.args,
            args_sha256: &self.args_sha256,
            decision: self.decision,
            grant: self.grant,
            outcome: self.outcome,
            result_digest: self.result_digest.as_deref(),
            detail: self.detail.as_deref(),
            prev_hash,
            hash,
        }
    }
}

/// A row read with [`UNSEALED_SELECT`] and its digest in column `digest`,
/// as a record; `None` for an unsealed one that does not match its digest
/// (until it is chained, a record is only as good as its digest).
fn intact_record(r: &Row<'_, '_>, digest: usize) -> Result<Option<AuditRecord>, KernelError> {
    let sealed = matches!(r.value(0)?, Value::Int(n) if n > 0);
    if !sealed {
        let carried: Option<String> = r.get(digest)?;
        let matches =
            row_ref(r).is_ok_and(|raw| carried.as_deref() == Some(unsealed_digest(&raw, &mut Vec::new()).as_str()));
        if !matches {
            return Ok(None);
        }
    }
    record_from_row(r).map(Some)
}

/// The columns as a select list, and the insert statement (built once: every append uses it).
static AUDIT_COLUMNS: LazyLock<String> = LazyLock::new(|| COLUMNS.join(", "));
/// The columns with `seq`, `prev_hash` and `hash` as they may be unsealed (NULL as 0 and '').
static UNSEALED_SELECT: LazyLock<String> = LazyLock::new(|| {
    COLUMNS
        .iter()
        .map(|c| match *c {
            "seq" => "coalesce(seq, 0)".to_string(),
            "prev_hash" | "hash" => format!("coalesce({c}, '')"),
            c => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
});
static INSERT: LazyLock<String> =
    LazyLock::new(|| format!("INSERT INTO audit ({}) VALUES ({})", *AUDIT_COLUMNS, ["?"; COLUMNS.len()].join(", ")));

/// A row read into a typed record. A value of the wrong type, or text no
/// record can have, is store corruption naming the record and the field.
fn record_from_row(r: &Row<'_, '_>) -> Result<AuditRecord, KernelError> {
    let row = row_ref(r).map_err(|field| {
        let seq = match r.value(0) {
            Ok(Value::Int(n)) => n.to_string(),
            _ => "?".to_string(),
        };
        StoreError::Corrupt(format!("audit record {seq}: field `{field}` holds a value of the wrong type"))
    })?;
    AuditRecord::from_row(&row).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

/// A row with nothing in it, for an unreadable unsealed record.
const EMPTY_ROW: AuditRow<'static> = AuditRow {
    seq: 0,
    at: 0,
    actor: "",
    kind: "",
    action: "",
    pid: None,
    args: "",
    args_sha256: "",
    decision: None,
    grant: None,
    outcome: "",
    result_digest: None,
    detail: None,
    prev_hash: "",
    hash: "",
};

impl Tx<'_> {
    /// The last sealed record's (seq, hash), or (0, GENESIS) for an empty chain.
    pub(crate) fn audit_head(&self) -> Result<(AuditSeq, String), KernelError> {
        if let Some(head) = self.audit_head.borrow().as_ref() {
            return Ok(head.clone());
        }
        // An SQLite write holds the write order from its BEGIN, so the head
        // read here is the one it appends after.
        let head = self
            .row("SELECT seq, hash FROM audit WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1", &[], |r| {
                Ok((AuditSeq(r.get(0)?), r.get::<String>(1)?))
            })?
            .unwrap_or((AuditSeq(0), GENESIS.to_string()));
        *self.audit_head.borrow_mut() = Some(head.clone());
        Ok(head)
    }

    /// Appends a record to the chain. Part of the caller's transaction: if the
    /// append fails, the action it records does not commit either.
    pub(crate) fn append_audit(&self, draft: &AuditDraft, now: Timestamp) -> Result<Appended, KernelError> {
        self.append(draft, now, false).map(|(appended, _)| appended)
    }

    /// [`Tx::append_audit`] for a caller that keeps a reference to the record.
    pub(crate) fn append_audit_ref(
        &self,
        draft: &AuditDraft,
        now: Timestamp,
    ) -> Result<(Appended, AuditRef), KernelError> {
        let (appended, at) = self.append(draft, now, true)?;
        match at {
            Some(at) => Ok((appended, at)),
            None => Err(KernelError::Store(StoreError::Other("an audit record without a reference".to_string()))),
        }
    }

    fn append(
        &self,
        draft: &AuditDraft,
        now: Timestamp,
        keep_ref: bool,
    ) -> Result<(Appended, Option<AuditRef>), KernelError> {
        let mut buf = Vec::with_capacity(512);
        let stored = Stored::of(draft, now);
        if self.is_postgres() {
            let digest = unsealed_digest(&stored.row(0, "", ""), &mut buf);
            let id =
                if keep_ref { Some(self.one("SELECT nextval('audit_id')", &[], |r| r.get::<i64>(0))?) } else { None };
            let appended = Appended { args_sha256: stored.args_sha256.clone() };
            self.unsealed.borrow_mut().push(Unsealed { id, stored, digest });
            return Ok((appended, id.map(AuditRef)));
        }
        let (prev_seq, prev_hash) = self.audit_head()?;
        let seq = prev_seq.get() + 1;
        // The row exactly as stored: its canonical bytes are what the hash
        // covers and what verification recomputes from the table's text.
        canonical_bytes(&stored.row(seq, &prev_hash, ""), &mut buf);
        let hash = chain_hash(&prev_hash, &buf);
        let row = stored.row(seq, &prev_hash, &hash);
        self.exec(
            &INSERT,
            &[
                &row.seq,
                &row.at,
                &row.actor,
                &row.kind,
                &row.action,
                &row.pid,
                &row.args,
                &row.args_sha256,
                &row.decision,
                &row.grant,
                &row.outcome,
                &row.result_digest,
                &row.detail,
                &row.prev_hash,
                &row.hash,
            ],
        )?;
        *self.audit_head.borrow_mut() = Some((AuditSeq(seq), hash));
        Ok((Appended { args_sha256: stored.args_sha256 }, Some(AuditRef(seq))))
    }

    /// Inserts the records a PostgreSQL write collected, unsealed, in one
    /// statement: called as the transaction ends, just before its COMMIT,
    /// so that its place in commit order (`ord`) is taken after everything
    /// it read (see [`super::seal`] for why that matters).
    /// Says whether there was anything to insert.
    pub(crate) fn flush_audit(&self) -> Result<bool, KernelError> {
        let rows = std::mem::take(&mut *self.unsealed.borrow_mut());
        if rows.is_empty() {
            return Ok(false);
        }
        let mut values: Vec<Value<'_>> = Vec::with_capacity(rows.len() * UNSEALED_COLUMNS.len());
        for (pos, u) in rows.iter().enumerate() {
            let r = &u.stored;
            values.extend([
                u.id.map_or(Value::Null, Value::Int),
                Value::Int(pos as i64),
                Value::Int(r.at),
                Value::Text(&r.actor),
                Value::Text(r.kind),
                Value::Text(&r.action),
                r.pid.map_or(Value::Null, Value::Int),
                Value::Text(&r.args),
                Value::Text(&r.args_sha256),
                r.decision.map_or(Value::Null, Value::Text),
                r.grant.map_or(Value::Null, Value::Int),
                Value::Text(r.outcome),
                r.result_digest.as_deref().map_or(Value::Null, Value::Text),
                r.detail.as_deref().map_or(Value::Null, Value::Text),
                Value::Text(&u.digest),
            ]);
        }
        let params: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
        self.exec(&flush_sql(rows.len()), &params)?;
        Ok(true)
    }

    /// The record `at` refers to, sealed or not (an unsealed one with seq 0
    /// and no hashes), and the record after it in its transaction.
    pub(crate) fn audit_referred(
        &self,
        at: AuditRef,
    ) -> Result<Option<(AuditRecord, Option<AuditRecord>)>, KernelError> {
        if !self.is_postgres() {
            let Some(record) = self.audit_record(AuditSeq(at.0))? else { return Ok(None) };
            let next = self.audit_record(AuditSeq(at.0 + 1))?;
            return Ok(Some((record, next)));
        }
        let sql = format!("SELECT {}, ord, pos, digest FROM audit WHERE id = ?", *UNSEALED_SELECT);
        let found = self.row(&sql, &[&at.0], |r| {
            Ok((intact_record(r, 17)?, r.get::<Option<i64>>(15)?, r.get::<Option<i64>>(16)?))
        })?;
        let Some((Some(record), ord, pos)) = found else {
            return Ok(None);
        };
        // A transaction's records stay together, in order, when sealed, so
        // the next one in the transaction is the next one in the chain.
        let next = match (ord, pos) {
            (Some(ord), Some(pos)) => {
                let sql = format!(
                    "SELECT {}, digest FROM audit WHERE ord = ? AND pos > ? ORDER BY pos LIMIT 1",
                    *UNSEALED_SELECT
                );
                self.row(&sql, &[&ord, &pos], |r| intact_record(r, 15))?.flatten()
            }
            // Chained before the sealer: by its seq.
            _ => self.audit_record(AuditSeq(record.seq.get() + 1))?,
        };
        Ok(Some((record, next)))
    }

    /// Streams the records waiting for sealing, in the order they will be
    /// sealed, each with its row id and the digest it carries.
    pub(crate) fn audit_unsealed(
        &self,
        mut f: impl FnMut(i64, &AuditRow<'_>, Option<&str>) -> bool,
    ) -> Result<(), KernelError> {
        if !self.is_postgres() {
            return Ok(());
        }
        let sql = format!("SELECT {}, id, digest FROM audit WHERE seq IS NULL ORDER BY ord, pos", *UNSEALED_SELECT);
        self.scan(&sql, &[], |row| {
            let id: i64 = row.get(15)?;
            let digest: Option<&str> = row.get(16)?;
            let keep = match row_ref(row) {
                Ok(r) => f(id, &r, digest),
                // A field of the wrong type: no digest can match it.
                Err(_) => f(id, &EMPTY_ROW, Some("")),
            };
            Ok(keep)
        })
    }

    /// One record by its position in the chain.
    pub(crate) fn audit_record(&self, seq: AuditSeq) -> Result<Option<AuditRecord>, KernelError> {
        let sql = format!("SELECT {} FROM audit WHERE seq = ?", *AUDIT_COLUMNS);
        self.row(&sql, &[&seq.get()], record_from_row)
    }

    /// Records matching `filter`, oldest first; with a limit, the most
    /// recent ones; with `first`, the oldest ones.
    pub(crate) fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, KernelError> {
        let mut clauses = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(pid) = filter.pid {
            clauses.push("pid = ?");
            args.push(Value::Int(pid.get()));
        }
        if let Some(action) = &filter.action {
            clauses.push("action = ?");
            args.push(Value::Text(action));
        }
        if let Some(outcome) = filter.outcome {
            clauses.push("outcome = ?");
            args.push(Value::Text(outcome.as_str()));
        }
        if let Some(since) = filter.since {
            clauses.push("at >= ?");
            args.push(Value::Int(since.micros()));
        }
        if let Some(after) = filter.after {
            clauses.push("seq > ?");
            args.push(Value::Int(after.get()));
        }
        if let Some(before) = filter.before {
            clauses.push("seq < ?");
            args.push(Value::Int(before.get()));
        }
        // Only the sealed chain (on SQLite every record is sealed).
        let mut sql = format!("SELECT {} FROM audit WHERE seq IS NOT NULL", *AUDIT_COLUMNS);
        for clause in &clauses {
            sql.push_str(" AND ");
            sql.push_str(clause);
        }
        match (filter.first, filter.limit) {
            (Some(first), _) => sql.push_str(&format!(" ORDER BY seq LIMIT {first}")),
            (None, Some(limit)) => sql.push_str(&format!(" ORDER BY seq DESC LIMIT {limit}")),
            (None, None) => sql.push_str(" ORDER BY seq DESC"),
        }
        let params: Vec<&dyn Param> = args.iter().map(|a| a as &dyn Param).collect();
        let mut out = self.rows(&sql, &params, record_from_row)?;
        if filter.first.is_none() {
            out.reverse();
        }
        Ok(out)
    }

    /// Streams the records with `after < seq <= upto` through `verifier`,
    /// borrowing each row's text; a field of the wrong type is reported to
    /// the verifier as an unreadable record. Stops at the first break.
    pub(crate) fn audit_scan(&self, after: i64, upto: i64, verifier: &mut Verifier) -> Result<(), KernelError> {
        let sql = format!("SELECT {} FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq", *AUDIT_COLUMNS);
        self.scan(&sql, &[&after, &upto], |row| match row_ref(row) {
            Ok(r) => Ok(verifier.feed(&r)),
            Err(field) => {
                let seq = match row.value(0) {
                    Ok(Value::Int(n)) => n,
                    _ => after + 1,
                };
                verifier.unreadable(
                    AuditSeq(seq),
                    format!("field `{field}` holds a value of the wrong type (the record was altered)"),
                );
                Ok(false)
            }
        })
    }
}

/// A row as a borrowed [`AuditRow`], or the name of a column holding a value
/// of the wrong type.
fn row_ref<'r>(row: &Row<'r, '_>) -> Result<AuditRow<'r>, &'static str> {
    let text = |i: usize| -> Result<&'r str, &'static str> {
        match row.value(i) {
            Ok(Value::Text(t)) => Ok(t),
            _ => Err(COLUMNS[i]),
        }
    };
    let opt_text = |i: usize| -> Result<Option<&'r str>, &'static str> {
        match row.value(i) {
            Ok(Value::Null) => Ok(None),
            Ok(Value::Text(t)) => Ok(Some(t)),
            _ => Err(COLUMNS[i]),
        }
    };
    let int = |i: usize| -> Result<i64, &'static str> {
        match row.value(i) {
            Ok(Value::Int(n)) => Ok(n),
            _ => Err(COLUMNS[i]),
        }
    };
    let opt_int = |i: usize| -> Result<Option<i64>, &'static str> {
        match row.value(i) {
            Ok(Value::Null) => Ok(None),
            Ok(Value::Int(n)) => Ok(Some(n)),
            _ => Err(COLUMNS[i]),
        }
    };
    Ok(AuditRow {
        seq: int(0)?,
        at: int(1)?,
        actor: text(2)?,
        kind: text(3)?,
        action: text(4)?,
        pid: opt_int(5)?,
        args: text(6)?,
        args_sha256: text(7)?,
        decision: opt_text(8)?,
        grant: opt_int(9)?,
        outcome: text(10)?,
        result_digest: opt_text(11)?,
        detail: opt_text(12)?,
        prev_hash: text(13)?,
        hash: text(14)?,
    })
}
