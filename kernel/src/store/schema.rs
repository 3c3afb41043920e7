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
    // 11: a lease reads a process's inbox summary and pinned memory in time
    // independent of how many messages wait and how many objects it holds:
    // the row counts unread messages (they were counted through the inbox
    // index, O(unread) per quantum), interrupts and pins have partial
    // indexes of their own (they were found by scanning every unread
    // message and every handle).
    r#"
ALTER TABLE processes ADD COLUMN unread INTEGER NOT NULL DEFAULT 0;
UPDATE processes SET unread = (SELECT count(*) FROM messages WHERE messages.to_pid = processes.pid AND messages.read_at IS NULL);
CREATE INDEX messages_interrupts ON messages (to_pid, id) WHERE read_at IS NULL AND kind = 'interrupt';
CREATE INDEX views_pinned ON views (pid, created_at, oid) WHERE pinned = 1;
"#,
    // 12: ranked full-text search over memory objects (`memory_search`):
    // names weigh more than content; English stemming on both stores.
    // SQLite keeps an FTS5 index of the objects table in step by triggers
    // (an upsert's update fires them too); PostgreSQL a generated tsvector
    // column with a GIN index.
    r#"
--@sqlite
CREATE VIRTUAL TABLE objects_fts USING fts5(
    name, content, content = 'objects', content_rowid = 'oid', tokenize = 'porter unicode61'
);
INSERT INTO objects_fts (objects_fts) VALUES ('rebuild');
CREATE TRIGGER objects_fts_insert AFTER INSERT ON objects BEGIN
    INSERT INTO objects_fts (rowid, name, content) VALUES (new.oid, new.name, new.content);
END;
CREATE TRIGGER objects_fts_update AFTER UPDATE OF name, content ON objects BEGIN
    INSERT INTO objects_fts (objects_fts, rowid, name, content) VALUES ('delete', old.oid, old.name, old.content);
    INSERT INTO objects_fts (rowid, name, content) VALUES (new.oid, new.name, new.content);
END;
CREATE TRIGGER objects_fts_delete AFTER DELETE ON objects BEGIN
    INSERT INTO objects_fts (objects_fts, rowid, name, content) VALUES ('delete', old.oid, old.name, old.content);
END;
--@postgres
ALTER TABLE objects ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', name), 'A') || setweight(to_tsvector('english', content), 'B')
) STORED;
CREATE INDEX objects_search ON objects USING GIN (search);
--@both
"#,
    // 13: PostgreSQL's audit records are numbered and chained after commit
    // by the sealer (see `seal`); nothing changes on SQLite, whose one
    // writer chains them inline. A record is inserted unsealed: `id` (its
    // row's key, what requests and effects refer to), `ord` (its
    // transaction's place in commit order, taken as the transaction ends),
    // `pos` (its place in the transaction; `INT`, 32 bits, on purpose) and
    // `digest` (the sha256 of its canonical bytes with seq 0, so altering
    // it before it is sealed shows), with `seq`, `prev_hash` and `hash`
    // NULL until the sealer sets them. Records already chained keep their
    // seq as their id. The round-robin position, read from the audit head
    // on SQLite, comes from a sequence.
    r#"
--@postgres
ALTER TABLE audit DROP CONSTRAINT audit_pkey;
ALTER TABLE audit ALTER COLUMN seq DROP NOT NULL, ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE audit ADD COLUMN id BIGINT, ADD COLUMN ord BIGINT, ADD COLUMN pos INT, ADD COLUMN digest TEXT;
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
--@both
"#,
];

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Which database a migration is read for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The lines of a migration that `dialect` runs: a line `--@sqlite` or
/// `--@postgres` starts a part only that database runs (full-text search
/// is FTS5 on one and tsvector on the other), `--@both` ends it.
fn lines_for(sql: &str, dialect: Dialect) -> String {
    let mut keep = true;
    let mut out = String::with_capacity(sql.len());
    for line in sql.lines() {
        match line.trim() {
            "--@sqlite" => keep = dialect == Dialect::Sqlite,
            "--@postgres" => keep = dialect == Dialect::Postgres,
            "--@both" => keep = true,
            _ if keep => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// A migration as SQLite takes it (its PostgreSQL-only parts left out).
pub fn sqlite_ddl(sql: &str) -> String {
    lines_for(sql, Dialect::Sqlite)
}

/// A migration as PostgreSQL takes it: its SQLite-only parts left out,
/// SQLite's `INTEGER` (64 bits) as `BIGINT`, and an `AUTOINCREMENT` key an
/// identity column.
pub fn postgres_ddl(sqlite: &str) -> String {
    let mut out = lines_for(sqlite, Dialect::Postgres)
        .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
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
    use super::{postgres_ddl, sqlite_ddl};

    #[test]
    fn integer_types_become_64_bit() {
        assert_eq!(
            postgres_ddl("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, MY_INTEGERS TEXT)"),
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT NOT NULL, MY_INTEGERS TEXT)\n"
        );
    }

    #[test]
    fn each_database_runs_its_own_parts_of_a_migration() {
        let sql = "CREATE TABLE a (n INTEGER);\n--@sqlite\nCREATE VIRTUAL TABLE f USING fts5(x);\n--@postgres\nCREATE INDEX g ON a USING GIN (n);\n--@both\nCREATE TABLE b (m TEXT);\n";
        assert_eq!(
            sqlite_ddl(sql),
            "CREATE TABLE a (n INTEGER);\nCREATE VIRTUAL TABLE f USING fts5(x);\nCREATE TABLE b (m TEXT);\n"
        );
        assert_eq!(
            postgres_ddl(sql),
            "CREATE TABLE a (n BIGINT);\nCREATE INDEX g ON a USING GIN (n);\nCREATE TABLE b (m TEXT);\n"
        );
    }
}
