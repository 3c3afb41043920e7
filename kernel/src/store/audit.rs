//! Audit rows: append inside the caller's transaction, query, and stream for verification.

use rusqlite::{OptionalExtension, Row, params_from_iter, types::Value};

use super::{Sql, Tx};
use crate::audit::{
    AuditDraft, AuditFilter, AuditRecord, GENESIS, bound_args, canonical_bytes, chain_hash, sha256_hex,
};
use crate::error::KernelError;
use crate::ids::{AuditSeq, GrantId, Pid};
use crate::time::Timestamp;

const AUDIT_COLUMNS: &str = "seq, at, actor, kind, action, pid, args, args_sha256, decision, grant_id, outcome, \
     result_digest, detail, prev_hash, hash";

fn record_from_row(r: &Row<'_>) -> Result<AuditRecord, rusqlite::Error> {
    Ok(AuditRecord {
        seq: AuditSeq(r.get(0)?),
        at: Timestamp(r.get(1)?),
        actor: r.get(2)?,
        kind: r.get(3)?,
        action: r.get(4)?,
        pid: r.get::<_, Option<i64>>(5)?.map(Pid),
        args: r.get(6)?,
        args_sha256: r.get(7)?,
        decision: r.get(8)?,
        grant: r.get(9)?,
        outcome: r.get(10)?,
        result_digest: r.get(11)?,
        detail: r.get(12)?,
        prev_hash: r.get(13)?,
        hash: r.get(14)?,
    })
}

impl Tx<'_> {
    /// The last record's (seq, hash), or (0, GENESIS) for an empty log.
    pub(crate) fn audit_head(&self) -> Result<(AuditSeq, String), KernelError> {
        let head = self
            .tx
            .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .sql()?
            .query_row([], |r| Ok((AuditSeq(r.get(0)?), r.get::<_, String>(1)?)))
            .optional()
            .sql()?;
        Ok(head.unwrap_or((AuditSeq(0), GENESIS.to_string())))
    }

    /// Appends a record to the chain. Part of the caller's transaction: if the
    /// append fails, the action it records does not commit either.
    pub(crate) fn append_audit(&self, draft: &AuditDraft, now: Timestamp) -> Result<AuditRecord, KernelError> {
        let (prev_seq, prev_hash) = self.audit_head()?;
        let (args, args_sha256) = bound_args(&draft.args);
        let mut record = AuditRecord {
            seq: AuditSeq(prev_seq.get() + 1),
            at: now,
            actor: draft.actor.to_string(),
            kind: draft.kind.as_str().to_string(),
            action: draft.action.clone(),
            pid: draft.pid,
            args,
            args_sha256,
            decision: draft.decision.clone(),
            grant: draft.grant.map(GrantId::get),
            outcome: draft.outcome.as_str().to_string(),
            result_digest: draft.result.as_deref().map(|r| sha256_hex(r.as_bytes())),
            detail: draft.detail.clone(),
            prev_hash,
            hash: String::new(),
        };
        let mut buf = Vec::with_capacity(512);
        canonical_bytes(&record, &mut buf);
        record.hash = chain_hash(&record.prev_hash, &buf);
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .sql()?
            .execute(rusqlite::params![
                record.seq.get(),
                record.at.micros(),
                record.actor,
                record.kind,
                record.action,
                record.pid.map(Pid::get),
                record.args,
                record.args_sha256,
                record.decision,
                record.grant,
                record.outcome,
                record.result_digest,
                record.detail,
                record.prev_hash,
                record.hash
            ])
            .sql()?;
        Ok(record)
    }

    /// One record by its position in the chain.
    pub(crate) fn audit_record(&self, seq: AuditSeq) -> Result<Option<AuditRecord>, KernelError> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq = ?");
        self.tx.prepare_cached(&sql).sql()?.query_row([seq.get()], record_from_row).optional().sql()
    }

    /// Records matching `filter`, oldest first; with a limit, the most recent ones.
    pub(crate) fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, KernelError> {
        let mut clauses = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(pid) = filter.pid {
            clauses.push("pid = ?");
            args.push(Value::Integer(pid.get()));
        }
        if let Some(action) = &filter.action {
            clauses.push("action = ?");
            args.push(Value::Text(action.clone()));
        }
        if let Some(outcome) = filter.outcome {
            clauses.push("outcome = ?");
            args.push(Value::Text(outcome.as_str().to_string()));
        }
        if let Some(since) = filter.since {
            clauses.push("at >= ?");
            args.push(Value::Integer(since.micros()));
        }
        if let Some(after) = filter.after {
            clauses.push("seq > ?");
            args.push(Value::Integer(after.get()));
        }
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY seq DESC");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut stmt = self.tx.prepare(&sql).sql()?;
        let rows = stmt.query_map(params_from_iter(args), record_from_row).sql()?;
        let mut out: Vec<AuditRecord> = rows.collect::<Result<_, _>>().sql()?;
        out.reverse();
        Ok(out)
    }

    /// Up to `limit` records with `seq > after`, in order (for streaming
    /// verification). Stops at a row whose fields do not even have their
    /// column's type (an edit made outside libos) and returns its seq and
    /// the field, so verification can name it instead of failing.
    pub(crate) fn audit_batch(
        &self,
        after: i64,
        limit: usize,
        out: &mut Vec<AuditRecord>,
    ) -> Result<Option<(AuditSeq, String)>, KernelError> {
        out.clear();
        let mut stmt = self
            .tx
            .prepare_cached(&format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?"))
            .sql()?;
        let mut rows = stmt.query(rusqlite::params![after, limit as i64]).sql()?;
        while let Some(row) = rows.next().sql()? {
            match record_from_row(row) {
                Ok(r) => out.push(r),
                Err(e) => match wrong_type(&e) {
                    Some(problem) => return Ok(Some((AuditSeq(row.get::<_, i64>(0).sql()?), problem))),
                    None => return Err(e).sql(),
                },
            }
        }
        Ok(None)
    }
}

/// Describes a conversion error caused by a value of the wrong type in a column.
fn wrong_type(e: &rusqlite::Error) -> Option<String> {
    let field = match e {
        rusqlite::Error::InvalidColumnType(_, name, _) => name.clone(),
        rusqlite::Error::FromSqlConversionFailure(i, _, _) | rusqlite::Error::IntegralValueOutOfRange(i, _) => {
            format!("column {i}")
        }
        rusqlite::Error::Utf8Error(_) => "text".to_string(),
        _ => return None,
    };
    Some(format!("field `{field}` holds a value of the wrong type (the record was altered)"))
}
