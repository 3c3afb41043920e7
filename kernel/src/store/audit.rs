//! Audit rows: append inside the caller's transaction, query, and stream for verification.

use std::sync::LazyLock;

use super::Tx;
use super::db::{Param, Row, Value};
use crate::audit::verify::Verifier;
use crate::audit::{
    AuditDecision, AuditDraft, AuditFilter, AuditRecord, AuditRow, COLUMNS, GENESIS, bound_args, canonical_bytes,
    chain_hash, sha256_hex,
};
use crate::error::{KernelError, StoreError};
use crate::ids::{AuditSeq, GrantId, Pid};
use crate::time::Timestamp;

/// The columns as a select list, and the insert statement (built once: every append uses it).
static AUDIT_COLUMNS: LazyLock<String> = LazyLock::new(|| COLUMNS.join(", "));
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

impl Tx<'_> {
    /// The last record's (seq, hash), or (0, GENESIS) for an empty log.
    pub(crate) fn audit_head(&self) -> Result<(AuditSeq, String), KernelError> {
        if let Some(head) = self.audit_head.borrow().as_ref() {
            return Ok(head.clone());
        }
        // A write reads the head it appends after only once it holds the write order.
        self.lock_chain()?;
        let head = self
            .row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[], |r| {
                Ok((AuditSeq(r.get(0)?), r.get::<String>(1)?))
            })?
            .unwrap_or((AuditSeq(0), GENESIS.to_string()));
        *self.audit_head.borrow_mut() = Some(head.clone());
        Ok(head)
    }

    /// Appends a record to the chain. Part of the caller's transaction: if the
    /// append fails, the action it records does not commit either.
    pub(crate) fn append_audit(&self, draft: &AuditDraft, now: Timestamp) -> Result<AuditRecord, KernelError> {
        let (prev_seq, prev_hash) = self.audit_head()?;
        let (args, args_sha256) = bound_args(&draft.args);
        let seq = AuditSeq(prev_seq.get() + 1);
        let actor = draft.actor.to_string();
        let decision = draft.decision.map(AuditDecision::as_str);
        let result_digest = draft.result.as_deref().map(|r| sha256_hex(r.as_bytes()));
        let grant = draft.grant.map(GrantId::get);
        let pid = draft.pid.map(Pid::get);
        // The row exactly as stored: its canonical bytes are what the hash
        // covers and what verification recomputes from the table's text.
        let mut row = AuditRow {
            seq: seq.get(),
            at: now.micros(),
            actor: &actor,
            kind: draft.kind.as_str(),
            action: draft.action.as_str(),
            pid,
            args: &args,
            args_sha256: &args_sha256,
            decision,
            grant,
            outcome: draft.outcome.as_str(),
            result_digest: result_digest.as_deref(),
            detail: draft.detail.as_deref(),
            prev_hash: &prev_hash,
            hash: "",
        };
        let mut buf = Vec::with_capacity(512);
        canonical_bytes(&row, &mut buf);
        let hash = chain_hash(&prev_hash, &buf);
        row.hash = &hash;
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
        let record = AuditRecord {
            seq,
            at: now,
            actor: draft.actor.clone(),
            kind: draft.kind,
            action: draft.action.clone(),
            pid: draft.pid,
            args,
            args_sha256,
            decision: draft.decision,
            grant,
            outcome: draft.outcome,
            result_digest,
            detail: draft.detail.clone(),
            prev_hash,
            hash,
        };
        *self.audit_head.borrow_mut() = Some((record.seq, record.hash.clone()));
        Ok(record)
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
        let mut sql = format!("SELECT {} FROM audit", *AUDIT_COLUMNS);
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
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
