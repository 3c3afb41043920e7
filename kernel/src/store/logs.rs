//! Per-process logs: model calls, the transcript, and pending external effects.

use std::time::Duration;

use super::Tx;
use super::audit::AuditRef;
use super::db::Row;
use crate::audit::Outcome;
use crate::error::{KernelError, StoreError};
use crate::ids::{ModelCallId, Pid};
use crate::quantum::{
    CallDetail, CompactTurn, ModelCallOutcome, ModelCallRecord, ModelCallRow, RecentHistory, TokenUsage,
    ToolCallRecord, ToolResultRecord, TranscriptEntry,
};
use crate::time::Timestamp;

fn model_call_from_row(r: &Row<'_, '_>) -> Result<ModelCallRow, KernelError> {
    let outcome: &str = r.get(15)?;
    Ok(ModelCallRow {
        id: ModelCallId(r.get(0)?),
        pid: Pid(r.get(1)?),
        quantum: r.get::<i64>(2)? as u64,
        at: Timestamp(r.get(4)?),
        record: ModelCallRecord {
            cost_micros: r.get::<i64>(17)? as u64,
            attempt: r.get::<i64>(3)? as u32,
            profile: r.get(5)?,
            model: r.get(6)?,
            request_digest: r.get(7)?,
            request_bytes: r.get::<i64>(8)? as u64,
            response: r.get(9)?,
            rationale: r.get(10)?,
            usage: TokenUsage {
                input: r.get::<i64>(11)? as u64,
                output: r.get::<i64>(12)? as u64,
                estimated: r.get(13)?,
            },
            latency: Duration::from_micros(r.get::<i64>(14)? as u64),
            outcome: match outcome {
                "ok" => ModelCallOutcome::Ok,
                "rejected" => ModelCallOutcome::Rejected,
                _ => ModelCallOutcome::Error,
            },
            error: r.get(16)?,
            detail: CallDetail {
                call_mode: r.get(18)?,
                finish_reason: r.get(19)?,
                sent: r.get(20)?,
                usage: r.get(21)?,
            },
        },
    })
}

fn transcript_from_row(r: &Row<'_, '_>) -> Result<(TranscriptEntry, String), KernelError> {
    Ok((
        TranscriptEntry {
            quantum: r.get::<i64>(0)? as u64,
            call: ToolCallRecord {
                call_id: r.get(1)?,
                tool: r.get(2)?,
                args: r.get(3)?,
                rationale: r.get(6)?,
                carry: r.get(8)?,
            },
            result: ToolResultRecord { outcome: Outcome::Ok, content: r.get(4)? },
            at: Timestamp(r.get(7)?),
        },
        r.get(5)?,
    ))
}

fn with_outcome((mut entry, outcome): (TranscriptEntry, String)) -> Result<TranscriptEntry, KernelError> {
    entry.result.outcome = Outcome::parse(&outcome)
        .ok_or_else(|| KernelError::Store(StoreError::Corrupt(format!("transcript outcome `{outcome}`"))))?;
    Ok(entry)
}

/// The columns `model_call_from_row` reads, in its order.
const MODEL_CALL_COLUMNS: &str = "id, pid, quantum, attempt, at, profile, model, request_digest, request_bytes, \
     response, rationale, tokens_in, tokens_out, tokens_estimated, latency_us, outcome, error, cost_micros, \
     call_mode, finish_reason, sent, usage_detail";

impl Tx<'_> {
    /// Stores a model call.
    pub(crate) fn insert_model_call(
        &self,
        pid: Pid,
        quantum: u64,
        m: &ModelCallRecord,
        now: Timestamp,
    ) -> Result<ModelCallId, KernelError> {
        let id: i64 = self.one(
            "INSERT INTO model_calls (pid, quantum, attempt, at, profile, model, request_digest, request_bytes, \
             response, rationale, tokens_in, tokens_out, tokens_estimated, latency_us, outcome, error, \
             cost_micros, call_mode, finish_reason, sent, usage_detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            &[
                &pid.get(),
                &(quantum as i64),
                &i64::from(m.attempt),
                &now.micros(),
                &m.profile,
                &m.model,
                &m.request_digest,
                &(m.request_bytes as i64),
                &m.response,
                &m.rationale,
                &(m.usage.input as i64),
                &(m.usage.output as i64),
                &m.usage.estimated,
                &(m.latency.as_micros() as i64),
                &m.outcome.as_str(),
                &m.error,
                &(m.cost_micros as i64),
                &m.detail.call_mode,
                &m.detail.finish_reason,
                &m.detail.sent,
                &m.detail.usage,
            ],
            |r| r.get(0),
        )?;
        Ok(ModelCallId(id))
    }

    /// A process's model calls, oldest first.
    pub(crate) fn model_calls(&self, pid: Pid) -> Result<Vec<ModelCallRow>, KernelError> {
        let sql = format!("SELECT {MODEL_CALL_COLUMNS} FROM model_calls WHERE pid = ? ORDER BY id");
        self.rows(&sql, &[&pid.get()], model_call_from_row)
    }

    /// The model calls of one quantum of `pid`, oldest first.
    pub(crate) fn quantum_model_calls(&self, pid: Pid, quantum: u64) -> Result<Vec<ModelCallRow>, KernelError> {
        let sql = format!("SELECT {MODEL_CALL_COLUMNS} FROM model_calls WHERE pid = ? AND quantum = ? ORDER BY id");
        self.rows(&sql, &[&pid.get(), &(quantum as i64)], model_call_from_row)
    }

    /// Appends a transcript entry.
    pub(crate) fn insert_transcript(
        &self,
        pid: Pid,
        quantum: u64,
        call: &ToolCallRecord,
        result: &ToolResultRecord,
        now: Timestamp,
    ) -> Result<(), KernelError> {
        self.exec(
            "INSERT INTO transcript (pid, quantum, call_id, tool, args, result, outcome, rationale, at, carry) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                &pid.get(),
                &(quantum as i64),
                &call.call_id,
                &call.tool,
                &call.args,
                &result.content,
                &result.outcome.as_str(),
                &call.rationale,
                &now.micros(),
                &call.carry,
            ],
        )?;
        self.exec("UPDATE processes SET turns = turns + 1 WHERE pid = ?", &[&pid.get()])?;
        Ok(())
    }

    /// The last `limit` transcript entries (all with `None`), oldest first, and the total count.
    pub(crate) fn transcript(
        &self,
        pid: Pid,
        limit: Option<usize>,
    ) -> Result<(Vec<TranscriptEntry>, u64), KernelError> {
        let total: i64 = self.one("SELECT count(*) FROM transcript WHERE pid = ?", &[&pid.get()], |r| r.get(0))?;
        // The limit is part of the SQL text, not a parameter: SQLite plans
        // `LIMIT ?` with the bound value and re-prepares the statement
        // whenever it changes, which cost a full parse on every quantum.
        let limit = limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let sql = format!(
            "SELECT quantum, call_id, tool, args, result, outcome, rationale, at, carry FROM transcript \
             WHERE pid = ? ORDER BY id DESC{limit}"
        );
        let mut out = self.rows(&sql, &[&pid.get()], |r| with_outcome(transcript_from_row(r)?))?;
        out.reverse();
        Ok((out, total as u64))
    }

    /// Records the intent of an external effect (one per process at a time).
    pub(crate) fn insert_effect(
        &self,
        pid: Pid,
        quantum: u64,
        call: &ToolCallRecord,
        audit: AuditRef,
        now: Timestamp,
    ) -> Result<(), KernelError> {
        self.exec(
            "INSERT INTO effects (pid, quantum, call_id, tool, args, rationale, started_at, audit_seq, carry) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                &pid.get(),
                &(quantum as i64),
                &call.call_id,
                &call.tool,
                &call.args,
                &call.rationale,
                &now.micros(),
                &audit.0,
                &call.carry,
            ],
        )?;
        Ok(())
    }

    /// Removes and returns the pending effect of a process, if any.
    pub(crate) fn take_effect(&self, pid: Pid) -> Result<Option<(u64, ToolCallRecord)>, KernelError> {
        let found = self.row(
            "SELECT quantum, call_id, tool, args, rationale, carry FROM effects WHERE pid = ?",
            &[&pid.get()],
            |r| {
                Ok((
                    r.get::<i64>(0)? as u64,
                    ToolCallRecord {
                        call_id: r.get(1)?,
                        tool: r.get(2)?,
                        args: r.get(3)?,
                        rationale: r.get(4)?,
                        carry: r.get(5)?,
                    },
                ))
            },
        )?;
        if found.is_some() {
            self.exec("DELETE FROM effects WHERE pid = ?", &[&pid.get()])?;
        }
        Ok(found)
    }
}

impl Tx<'_> {
    /// The newest `window` turns of `pid` in full and up to `compact` turns
    /// before them without their results. The quantum asks for this every
    /// time, outside any explicit transaction (`BEGIN`/`ROLLBACK` around it
    /// cost as much as the queries): the two statements need no common
    /// snapshot, as only the leased quantum appends to this process's transcript.
    pub(crate) fn recent_history(&self, pid: Pid, window: usize, compact: usize) -> Result<RecentHistory, KernelError> {
        let sql = format!(
            "SELECT quantum, call_id, tool, args, result, outcome, rationale, at, carry, id, \
         (SELECT turns FROM processes WHERE pid = ?1) FROM transcript \
         WHERE pid = ?1 ORDER BY id DESC LIMIT {window}"
        );
        let mut total = 0u64;
        let mut first_id = i64::MAX;
        let mut full = self.rows(&sql, &[&pid.get()], |r| {
            total = r.get::<i64>(10)? as u64;
            first_id = first_id.min(r.get(9)?);
            with_outcome(transcript_from_row(r)?)
        })?;
        full.reverse();
        if full.is_empty() || compact == 0 {
            let older = total.saturating_sub(full.len() as u64);
            return Ok(RecentHistory { full, compact: Vec::new(), older });
        }
        let sql = format!(
            "SELECT quantum, tool, substr(args, 1, 100), length(args) > 100, outcome, octet_length(result) \
         FROM transcript WHERE pid = ? AND id < ? ORDER BY id DESC LIMIT {compact}"
        );
        let rows = self.rows(&sql, &[&pid.get(), &first_id], |r| {
            Ok((
                r.get::<i64>(0)? as u64,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<bool>(3)?,
                r.get::<String>(4)?,
                r.get::<i64>(5)? as u64,
            ))
        })?;
        let mut turns = Vec::new();
        for (quantum, tool, args, args_cut, outcome, result_bytes) in rows {
            let outcome = Outcome::parse(&outcome)
                .ok_or_else(|| KernelError::Store(StoreError::Corrupt(format!("transcript outcome `{outcome}`"))))?;
            turns.push(CompactTurn { quantum, tool, args, args_cut, outcome, result_bytes });
        }
        turns.reverse();
        let older = total.saturating_sub((full.len() + turns.len()) as u64);
        Ok(RecentHistory { full, compact: turns, older })
    }
}
