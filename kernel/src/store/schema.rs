//! Schema migrations, tracked by `PRAGMA user_version` on SQLite and by the
//! one-row `libos_schema` table on PostgreSQL.
//!
//! Each entry of [`MIGRATIONS`] moves the schema from version `i` to `i + 1` and
//! runs inside the same transaction that sets the new version, so a store is
//! never left half-migrated. The SQL is written for SQLite and stays portable
//! but for its integer types, which [`postgres_ddl`] maps: both databases get
//! the same tables, columns, constraints and (partial) indexes.

/// Migrations in order; the schema version is their count.
pub const MIGRATIONS: &[&str] = &[
    // 1: processes, images, audit, model calls, transcript, pending effects.
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE images (
    digest     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE processes (
    pid            INTEGER PRIMARY KEY AUTOINCREMENT,
    ppid           INTEGER,
    image_digest   TEXT NOT NULL REFERENCES images(digest),
    image_name     TEXT NOT NULL,
    goal           TEXT NOT NULL,
    workspace      TEXT NOT NULL,
    state          TEXT NOT NULL,
    state_data     TEXT NOT NULL,
    ready_at       INTEGER,
    lease_owner    TEXT,
    lease_expires  INTEGER,
    priority       INTEGER NOT NULL DEFAULT 0,
    rr             INTEGER NOT NULL,
    generation     INTEGER NOT NULL,
    quanta         INTEGER NOT NULL DEFAULT 0,
    model_calls    INTEGER NOT NULL DEFAULT 0,
    tokens_in      INTEGER NOT NULL DEFAULT 0,
    tokens_out     INTEGER NOT NULL DEFAULT 0,
    tokens_estimated INTEGER NOT NULL DEFAULT 0,
    tool_calls     INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX processes_sched ON processes (state, priority, rr);
CREATE INDEX processes_lease ON processes (lease_owner, lease_expires);
CREATE INDEX processes_rr ON processes (rr);

CREATE TABLE audit (
    seq           INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    action        TEXT NOT NULL,
    pid           INTEGER,
    args          TEXT NOT NULL,
    args_sha256   TEXT NOT NULL,
    decision      TEXT,
    grant_id      INTEGER,
    outcome       TEXT NOT NULL,
    result_digest TEXT,
    detail        TEXT,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_pid ON audit (pid, seq);

CREATE TABLE model_calls (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    pid            INTEGER NOT NULL REFERENCES processes(pid),
    quantum        INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    profile        TEXT NOT NULL,
    model          TEXT NOT NULL,
    request_digest TEXT NOT NULL,
    request_bytes  INTEGER NOT NULL,
    response       TEXT NOT NULL,
    rationale      TEXT,
    tokens_in      INTEGER NOT NULL,
    tokens_out     INTEGER NOT NULL,
    tokens_estimated INTEGER NOT NULL,
    latency_us     INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    error          TEXT
);
CREATE INDEX model_calls_pid ON model_calls (pid, id);

CREATE TABLE transcript (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    pid       INTEGER NOT NULL REFERENCES processes(pid),
    quantum   INTEGER NOT NULL,
    call_id   TEXT NOT NULL,
    tool      TEXT NOT NULL,
    args      TEXT NOT NULL,
    result    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    rationale TEXT,
    at        INTEGER NOT NULL
);
CREATE INDEX transcript_pid ON transcript (pid, id);

CREATE TABLE effects (
    pid        INTEGER PRIMARY KEY REFERENCES processes(pid),
    quantum    INTEGER NOT NULL,
    call_id    TEXT NOT NULL,
    tool       TEXT NOT NULL,
    args       TEXT NOT NULL,
    rationale  TEXT,
    started_at INTEGER NOT NULL,
    audit_seq  INTEGER NOT NULL
);
"#,
    // 2: fewer, better indexes on the hot table. The scheduling index follows
    // the lease query's order (priority descending, then round-robin), so
    // leasing reads the first due rows instead of sorting every runnable
    // process; lease queries use its `state = 'running'` prefix, and `rr`
    // comes from the audit head, so the other two indexes only cost writes.
    r#"
DROP INDEX processes_sched;
DROP INDEX processes_lease;
DROP INDEX processes_rr;
CREATE INDEX processes_sched ON processes (state, priority DESC, rr);
"#,
    // 3: parking. Capability grants (a derivation tree through `parent`),
    // requests to humans, the call a parked process is parked on, messages,
    // and which ended children a parent has already waited for.
    r#"
CREATE TABLE grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    holder      INTEGER NOT NULL REFERENCES processes(pid),
    resource    TEXT NOT NULL,
    rights      INTEGER NOT NULL,
    effect      TEXT NOT NULL,
    uses_left   INTEGER,
    expires_at  INTEGER,
    delegable   INTEGER NOT NULL,
    parent      INTEGER REFERENCES grants(id),
    revoked_at  INTEGER,
    granted_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX grants_holder ON grants (holder);
CREATE INDEX grants_parent ON grants (parent);

CREATE TABLE requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pid         INTEGER NOT NULL REFERENCES processes(pid),
    kind        TEXT NOT NULL,
    tool        TEXT NOT NULL,
    args        TEXT NOT NULL,
    args_sha256 TEXT NOT NULL,
    audit_seq   INTEGER NOT NULL,
    resource    TEXT,
    wanted      TEXT,
    question    TEXT,
    status      TEXT NOT NULL,
    answer      TEXT,
    decided_by  TEXT,
    decided_at  INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX requests_status ON requests (status, id);
CREATE INDEX requests_pid ON requests (pid, status);

CREATE TABLE parked (
    pid         INTEGER PRIMARY KEY REFERENCES processes(pid),
    quantum     INTEGER NOT NULL,
    call_id     TEXT NOT NULL,
    tool        TEXT NOT NULL,
    args        TEXT NOT NULL,
    rationale   TEXT,
    request_id  INTEGER REFERENCES requests(id),
    approved    INTEGER NOT NULL DEFAULT 0,
    parked_at   INTEGER NOT NULL
);

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    sender         TEXT NOT NULL,
    sender_pid     INTEGER,
    to_pid         INTEGER NOT NULL REFERENCES processes(pid),
    kind           TEXT NOT NULL,
    channel        TEXT,
    correlation_id TEXT,
    reply_to       INTEGER,
    body           TEXT NOT NULL,
    sent_at        INTEGER NOT NULL,
    read_at        INTEGER
);
CREATE INDEX messages_inbox ON messages (to_pid, read_at, id);

ALTER TABLE processes ADD COLUMN reaped INTEGER NOT NULL DEFAULT 0;
CREATE INDEX processes_ppid ON processes (ppid);
CREATE INDEX processes_timers ON processes (ready_at) WHERE state = 'waiting' AND ready_at IS NOT NULL;
"#,
    // 4: budgets. A process's limits, what its live children hold of them
    // and what its ended children spent (JSON objects by dimension), its
    // cost and its children count.
    r#"
ALTER TABLE processes ADD COLUMN budget TEXT NOT NULL DEFAULT '{}';
ALTER TABLE processes ADD COLUMN reserved TEXT NOT NULL DEFAULT '{}';
ALTER TABLE processes ADD COLUMN children_spent TEXT NOT NULL DEFAULT '{}';
ALTER TABLE processes ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE processes ADD COLUMN children INTEGER NOT NULL DEFAULT 0;
ALTER TABLE model_calls ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0;
"#,
    // 5: memory. Objects by (namespace, name), and each process's view of
    // them: a handle with rights, pinned or not.
    r#"
CREATE TABLE objects (
    oid        INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    content    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    owner      INTEGER NOT NULL REFERENCES processes(pid),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (namespace, name)
);

CREATE TABLE views (
    pid        INTEGER NOT NULL REFERENCES processes(pid),
    oid        INTEGER NOT NULL REFERENCES objects(oid),
    rights     INTEGER NOT NULL,
    pinned     INTEGER NOT NULL DEFAULT 0,
    granted_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (pid, oid)
);
"#,
    // 6: the scheduler's outlook in constant time: the earliest backoff
    // among runnable processes and the earliest lease expiry among running
    // ones, each from a partial index instead of a scan.
    r#"
CREATE INDEX processes_backoff ON processes (ready_at) WHERE state = 'runnable' AND ready_at IS NOT NULL;
CREATE INDEX processes_leases ON processes (lease_expires) WHERE state = 'running';
"#,
    // 7: what a parked tool says of itself (an MCP tool's annotations, as a
    // JSON object), shown on its approval request; display only, never
    // part of the request's binding to the audit chain.
    r#"
ALTER TABLE requests ADD COLUMN hints TEXT;
"#,
    // 8: how each model call was made: its call mode, the settings sent
    // besides the conversation, and why the answer ended.
    r#"
ALTER TABLE model_calls ADD COLUMN call_mode TEXT;
ALTER TABLE model_calls ADD COLUMN finish_reason TEXT;
ALTER TABLE model_calls ADD COLUMN sent TEXT;
"#,
    // 9: provider state a model's turn carries to later prompts (the
    // Responses API's reasoning items), kept with its call wherever the
    // call is kept; and usage beyond input and output tokens (cache reads
    // and writes).
    r#"
ALTER TABLE transcript ADD COLUMN carry TEXT;
ALTER TABLE parked ADD COLUMN carry TEXT;
ALTER TABLE effects ADD COLUMN carry TEXT;
ALTER TABLE model_calls ADD COLUMN usage_detail TEXT;
"#,
    // 10: each process counts its transcript's turns, so that a quantum
    // does not count them (`recent_history` did, O(history) per quantum).
    r#"
ALTER TABLE processes ADD COLUMN turns INTEGER NOT NULL DEFAULT 0;
UPDATE processes SET turns = (SELECT count(*) FROM transcript WHERE transcript.pid = processes.pid);
"#,
    // 11: PostgreSQL's audit records are numbered and chained after commit
    // by the sealer (see `seal`); nothing changes on SQLite, whose one
    // writer chains them inline. The PostgreSQL side is [`POSTGRES_11`].
    "",
];

/// Migration 11 on PostgreSQL. A record is inserted unsealed: `id` (its
/// row's key, what requests and effects refer to), `ord` (its
/// transaction's place in commit order, taken as the transaction ends),
/// `pos` (its place in the transaction) and `digest` (the sha256 of its
/// canonical bytes with seq 0, so altering it before it is sealed shows),
/// with `seq`, `prev_hash` and `hash` NULL until the sealer sets them.
/// Records already chained keep their seq as their id. The round-robin
/// position, read from the audit head on SQLite, comes from a sequence.
const POSTGRES_11: &str = r#"
ALTER TABLE audit DROP CONSTRAINT audit_pkey;
ALTER TABLE audit ALTER COLUMN seq DROP NOT NULL, ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE audit ADD COLUMN id BIGINT, ADD COLUMN ord BIGINT, ADD COLUMN pos INTEGER, ADD COLUMN digest TEXT;
UPDATE audit SET id = seq;
ALTER TABLE audit ALTER COLUMN id SET NOT NULL, ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX audit_seq ON audit (seq);
CREATE INDEX audit_unsealed ON audit (ord, pos) WHERE seq IS NULL;
CREATE SEQUENCE audit_id;
SELECT setval('audit_id', (SELECT coalesce(max(seq), 0) + 1 FROM audit), false);
ALTER TABLE audit ALTER COLUMN id SET DEFAULT nextval('audit_id');
CREATE SEQUENCE audit_ord;
CREATE SEQUENCE processes_rr;
SELECT setval('processes_rr', greatest((SELECT coalesce(max(rr), 0) FROM processes), (SELECT coalesce(max(seq), 0) FROM audit)) + 1, false);
"#;

/// Migration `i` (from 0) as PostgreSQL runs it.
pub fn postgres_migration(i: usize) -> String {
    match i {
        10 => POSTGRES_11.to_string(),
        _ => MIGRATIONS.get(i).map_or_else(String::new, |sql| postgres_ddl(sql)),
    }
}

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// A migration as PostgreSQL takes it: SQLite's `INTEGER` is 64 bits, so
/// it becomes `BIGINT`, and an `AUTOINCREMENT` key an identity column.
pub fn postgres_ddl(sqlite: &str) -> String {
    let mut out =
        sqlite.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
    let mut from = 0;
    while let Some(at) = out[from..].find("INTEGER").map(|i| i + from) {
        let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if boundary(out[..at].chars().next_back()) && boundary(out[at + 7..].chars().next()) {
            out.replace_range(at..at + 7, "BIGINT");
        }
        from = at + 6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::postgres_ddl;

    #[test]
    fn integer_types_become_64_bit() {
        assert_eq!(
            postgres_ddl("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, MY_INTEGERS TEXT)"),
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT NOT NULL, MY_INTEGERS TEXT)"
        );
    }
}
