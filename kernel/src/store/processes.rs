//! Process rows: insert, load, transition, lease queries.

use std::path::PathBuf;

use super::Tx;
use super::db::Row;
use super::state_row;
use crate::budget::{Amounts, Budget, amounts_from_json, amounts_to_json};
use crate::error::KernelError;
use crate::ids::{Generation, ImageDigest, Pid, SchedulerId};
use crate::process::{ProcessFilter, ProcessInfo, SpawnSpec, Usage};
use crate::quantum::TokenUsage;
use crate::state::ProcState;
use crate::time::Timestamp;

const PROCESS_COLUMNS: &str = "pid, ppid, image_digest, image_name, goal, workspace, state, state_data, ready_at, \
     lease_owner, lease_expires, priority, generation, quanta, model_calls, tokens_in, tokens_out, \
     tokens_estimated, tool_calls, created_at, updated_at, budget, reserved, cost_micros, children, children_spent";

fn json_or_empty(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn process_from_row(r: &Row<'_, '_>) -> Result<ProcessInfo, KernelError> {
    let pid: i64 = r.get(0)?;
    let quanta: i64 = r.get(13)?;
    let state = state_row::decode(pid, r.get(6)?, r.get(7)?, (r.get(8)?, r.get(9)?, r.get(10)?), quanta)?;
    Ok(ProcessInfo {
        pid: Pid(pid),
        ppid: r.get::<Option<i64>>(1)?.map(Pid),
        image_digest: ImageDigest(r.get(2)?),
        image: r.get(3)?,
        goal: r.get(4)?,
        workspace: PathBuf::from(r.get::<&str>(5)?),
        state,
        priority: r.get(11)?,
        generation: Generation(r.get(12)?),
        usage: Usage {
            quanta: quanta as u64,
            model_calls: r.get::<i64>(14)? as u64,
            tokens_in: r.get::<i64>(15)? as u64,
            tokens_out: r.get::<i64>(16)? as u64,
            tokens_estimated: r.get(17)?,
            tool_calls: r.get::<i64>(18)? as u64,
            cost_micros: r.get::<i64>(23)? as u64,
            children: r.get::<i64>(24)? as u64,
        },
        budget: Budget::from_json(&json_or_empty(r.get(21)?)),
        reserved: amounts_from_json(&json_or_empty(r.get(22)?)),
        children_spent: amounts_from_json(&json_or_empty(r.get(25)?)),
        created_at: Timestamp(r.get(19)?),
        updated_at: Timestamp(r.get(20)?),
    })
}

impl Tx<'_> {
    /// The round-robin position of a process that joins the back of the
    /// queue now: one past the audit head. Every such move is a transition
    /// that appends an audit record, so positions only grow, and no index
    /// over `rr` is kept up to date just to find its maximum.
    ///
    /// On PostgreSQL writers do not read the audit head (see
    /// [`super::audit`]): the position comes from a sequence instead, which
    /// only grows too.
    fn next_rr(&self) -> Result<i64, KernelError> {
        if self.is_postgres() {
            return self.one("SELECT nextval('processes_rr')", &[], |r| r.get(0));
        }
        Ok(self.audit_head()?.0.get() + 1)
    }

    /// Inserts a runnable process; returns its new pid.
    pub(crate) fn insert_process(
        &self,
        spec: &SpawnSpec,
        image_name: &str,
        now: Timestamp,
    ) -> Result<Pid, KernelError> {
        let rr = self.next_rr()?;
        let st = state_row::encode(&ProcState::Runnable { not_before: None });
        let workspace = spec.workspace.to_string_lossy();
        let pid: i64 = self.one(
            "INSERT INTO processes (ppid, image_digest, image_name, goal, workspace, state, state_data, \
             priority, rr, generation, created_at, updated_at, budget) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) RETURNING pid",
            &[
                &spec.parent.map(Pid::get),
                &spec.image.0,
                &image_name,
                &spec.goal,
                &workspace,
                &st.tag,
                &st.data,
                &spec.priority,
                &rr,
                &now.micros(),
                &now.micros(),
                &spec.budget.to_json().to_string(),
            ],
            |r| r.get(0),
        )?;
        Ok(Pid(pid))
    }

    /// Loads one process. A PostgreSQL write locks its row until it ends
    /// (`FOR UPDATE`): whatever it decides from the row (a wake-up, a
    /// park, a transition) cannot race another write deciding from the
    /// same row, which waits, then reads the row as this one left it. That
    /// is what SQLite's one writer gives for free (see [`super::pg`]).
    pub(crate) fn process(&self, pid: Pid) -> Result<ProcessInfo, KernelError> {
        let sql = if self.is_postgres() && self.writes() {
            format!("SELECT {PROCESS_COLUMNS} FROM processes WHERE pid = ? FOR UPDATE")
        } else {
            format!("SELECT {PROCESS_COLUMNS} FROM processes WHERE pid = ?")
        };
        self.row(&sql, &[&pid.get()], process_from_row)?.ok_or(KernelError::NoSuchProcess(pid))
    }

    /// Lists processes in pid order.
    pub(crate) fn processes(&self, filter: ProcessFilter) -> Result<Vec<ProcessInfo>, KernelError> {
        let sql = match filter {
            ProcessFilter::Live => format!(
                "SELECT {PROCESS_COLUMNS} FROM processes WHERE state NOT IN ('exited', 'failed', 'killed') ORDER BY pid"
            ),
            ProcessFilter::All => format!("SELECT {PROCESS_COLUMNS} FROM processes ORDER BY pid"),
        };
        self.rows(&sql, &[], process_from_row)
    }

    /// Writes a new state, bumping the generation, if the process is still at `expected`.
    pub(crate) fn set_state(
        &self,
        pid: Pid,
        expected: Generation,
        state: &ProcState,
        now: Timestamp,
        start_quantum: bool,
    ) -> Result<Generation, KernelError> {
        let st = state_row::encode(state);
        let rr = if start_quantum { Some(self.next_rr()?) } else { None };
        let changed = self.exec(
            "UPDATE processes SET state = ?, state_data = ?, ready_at = ?, lease_owner = ?, lease_expires = ?, \
             generation = generation + 1, updated_at = ?, \
             quanta = quanta + ?, rr = COALESCE(?, rr) \
             WHERE pid = ? AND generation = ?",
            &[
                &st.tag,
                &st.data,
                &st.ready_at,
                &st.lease_owner,
                &st.lease_expires,
                &now.micros(),
                &start_quantum,
                &rr,
                &pid.get(),
                &expected.0,
            ],
        )?;
        if changed != 1 {
            let found = self.process(pid)?.generation;
            return Err(KernelError::Stale { pid, expected, found });
        }
        Ok(Generation(expected.0 + 1))
    }

    /// Runnable processes due at `now`, highest priority first, then round-robin order.
    pub(crate) fn due_runnable(
        &self,
        now: Timestamp,
        limit: usize,
        exclude: &[Pid],
    ) -> Result<Vec<ProcessInfo>, KernelError> {
        let sql = format!(
            "SELECT {PROCESS_COLUMNS} FROM processes WHERE state = 'runnable' AND (ready_at IS NULL OR ready_at <= ?) \
             ORDER BY priority DESC, rr ASC LIMIT {}{}",
            // In the text, not bound: see `transcript` on `LIMIT ?` re-preparing.
            limit + exclude.len(),
            // Nodes sharing a PostgreSQL store claim different rows at once;
            // SQLite has one writer at a time and no row locks.
            self.claim_rows()
        );
        let mut out = Vec::with_capacity(limit);
        self.scan(&sql, &[&now.micros()], |r| {
            let p = process_from_row(r)?;
            if !exclude.contains(&p.pid) {
                out.push(p);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// The earliest `not_before` among runnable processes in backoff, if any.
    ///
    /// `INDEXED BY` here and in the other scheduler lookups over a partial
    /// index: without it SQLite's planner prefers the `(state, ...)` index
    /// and walks every process in that state (22 ms at 100,000 parked, on
    /// every wake). With it the statement uses the index or fails to prepare.
    pub(crate) fn next_ready_at(&self) -> Result<Option<Timestamp>, KernelError> {
        self.one(
            "SELECT MIN(ready_at) FROM processes INDEXED BY processes_backoff \
             WHERE state = 'runnable' AND ready_at IS NOT NULL",
            &[],
            |r| Ok(r.get::<Option<i64>>(0)?.map(Timestamp)),
        )
    }

    /// The earliest lease expiry among processes running under other owners.
    pub(crate) fn next_foreign_expiry(&self, owner: &SchedulerId) -> Result<Option<Timestamp>, KernelError> {
        self.one(
            "SELECT MIN(lease_expires) FROM processes INDEXED BY processes_leases \
             WHERE state = 'running' AND lease_owner != ?",
            &[&owner.0],
            |r| Ok(r.get::<Option<i64>>(0)?.map(Timestamp)),
        )
    }

    /// Whether any process is runnable at all (due now or later).
    /// Takes back the quantum `quantum` of `pid` from its count if it never
    /// reached the model nor dispatched anything (it was interrupted before):
    /// such a quantum costs nothing against the `quanta` budget.
    pub(crate) fn refund_quantum(&self, pid: Pid, quantum: u64) -> Result<(), KernelError> {
        let q = quantum as i64;
        self.exec(
            "UPDATE processes SET quanta = quanta - 1 WHERE pid = ? AND quanta = ? \
             AND NOT EXISTS (SELECT 1 FROM model_calls WHERE pid = ? AND quantum = ?) \
             AND NOT EXISTS (SELECT 1 FROM transcript WHERE pid = ? AND quantum = ?)",
            &[&pid.get(), &q, &pid.get(), &q, &pid.get(), &q],
        )?;
        Ok(())
    }

    /// Whether some process is runnable now (not backing off).
    pub(crate) fn any_runnable_now(&self, now: Timestamp) -> Result<bool, KernelError> {
        self.one(
            "SELECT EXISTS (SELECT 1 FROM processes WHERE state = 'runnable' AND (ready_at IS NULL OR ready_at <= ?))",
            &[&now.micros()],
            |r| r.get(0),
        )
    }

    pub(crate) fn any_runnable(&self) -> Result<bool, KernelError> {
        self.one("SELECT EXISTS (SELECT 1 FROM processes WHERE state = 'runnable')", &[], |r| r.get(0))
    }

    /// Running processes whose lease lapsed before `now`.
    pub(crate) fn expired_leases(&self, now: Timestamp) -> Result<Vec<ProcessInfo>, KernelError> {
        let sql = format!(
            "SELECT {PROCESS_COLUMNS} FROM processes WHERE state = 'running' AND lease_expires < ? ORDER BY pid{}",
            self.claim_rows()
        );
        self.rows(&sql, &[&now.micros()], process_from_row)
    }

    /// (pid, generation) of every process running under `owner`'s lease.
    pub(crate) fn leased_by(&self, owner: &SchedulerId) -> Result<Vec<(Pid, Generation)>, KernelError> {
        let sql = format!(
            "SELECT pid, generation FROM processes WHERE state = 'running' AND lease_owner = ?{}",
            self.claim_rows()
        );
        self.rows(&sql, &[&owner.0], |r| Ok((Pid(r.get(0)?), Generation(r.get(1)?))))
    }

    /// Extends every lease `owner` holds to `until`; returns how many.
    pub(crate) fn renew_leases(&self, owner: &SchedulerId, until: Timestamp) -> Result<usize, KernelError> {
        self.exec(
            "UPDATE processes SET lease_expires = ? WHERE state = 'running' AND lease_owner = ?",
            &[&until.micros(), &owner.0],
        )
    }

    /// Adds a model call's tokens (and optionally a tool call) to the usage counters.
    pub(crate) fn charge(
        &self,
        pid: Pid,
        usage: TokenUsage,
        cost_micros: u64,
        tool_call: bool,
    ) -> Result<(), KernelError> {
        // `|` on 0 and 1 is a portable MAX of the two (SQLite's two-argument MAX is its own).
        self.exec(
            "UPDATE processes SET model_calls = model_calls + 1, tokens_in = tokens_in + ?, \
             tokens_out = tokens_out + ?, tokens_estimated = tokens_estimated | ?, \
             tool_calls = tool_calls + ?, cost_micros = cost_micros + ? WHERE pid = ?",
            &[
                &(usage.input as i64),
                &(usage.output as i64),
                &usage.estimated,
                &tool_call,
                &(cost_micros as i64),
                &pid.get(),
            ],
        )?;
        Ok(())
    }

    /// Writes a process's books for its children: how many it spawned,
    /// what live ones hold of its budget, what ended ones spent.
    pub(crate) fn set_child_books(
        &self,
        pid: Pid,
        children: u64,
        reserved: &Amounts,
        spent: &Amounts,
    ) -> Result<(), KernelError> {
        self.exec(
            "UPDATE processes SET children = ?, reserved = ?, children_spent = ? WHERE pid = ?",
            &[
                &(children as i64),
                &amounts_to_json(reserved).to_string(),
                &amounts_to_json(spent).to_string(),
                &pid.get(),
            ],
        )?;
        Ok(())
    }

    /// Sets a process's scheduling priority.
    pub(crate) fn set_priority(&self, pid: Pid, priority: i32) -> Result<(), KernelError> {
        self.exec("UPDATE processes SET priority = ? WHERE pid = ?", &[&priority, &pid.get()])?;
        Ok(())
    }

    /// Counts a tool call made without a model call (an approved call re-dispatched).
    pub(crate) fn charge_tool_call(&self, pid: Pid) -> Result<(), KernelError> {
        self.exec("UPDATE processes SET tool_calls = tool_calls + 1 WHERE pid = ?", &[&pid.get()])?;
        Ok(())
    }

    /// Registers an image spec under its digest (idempotent).
    pub(crate) fn insert_image(
        &self,
        digest: &ImageDigest,
        name: &str,
        version: &str,
        spec: &str,
        now: Timestamp,
    ) -> Result<(), KernelError> {
        self.exec(
            "INSERT INTO images (digest, name, version, spec, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (digest) DO NOTHING",
            &[&digest.0, &name, &version, &spec, &now.micros()],
        )?;
        Ok(())
    }

    /// The (name, version, spec text) of a registered image.
    pub(crate) fn image(&self, digest: &ImageDigest) -> Result<(String, String, String), KernelError> {
        self.row("SELECT name, version, spec FROM images WHERE digest = ?", &[&digest.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .ok_or_else(|| KernelError::NoSuchImage(digest.0.clone()))
    }
}
