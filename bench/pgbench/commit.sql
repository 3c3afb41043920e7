-- One quantum's commit as libos makes it on PostgreSQL without a global
-- lock: lock the process row, add a transcript entry, insert two audit
-- records unsealed (one statement, taking the transaction's place in
-- commit order), bump the generation, notify. See BENCHMARKS.md.
\set pid random(1, 256)
BEGIN;
SELECT generation FROM libos_pgbench.processes WHERE pid = :pid FOR UPDATE;
INSERT INTO libos_pgbench.transcript (pid, tool, result, at) VALUES (:pid, 'now', 'fine', 1);
WITH o AS MATERIALIZED (SELECT nextval('libos_pgbench.audit_ord') AS ord)
  INSERT INTO libos_pgbench.audit (ord, pos, at, actor, action, pid, args, detail, digest)
  SELECT o.ord, v.pos, 1, 'pid:1', v.action, :pid, '{}', v.detail, 'digest' FROM o,
  (VALUES (0, 'now', NULL), (1, 'yield', 'running -> runnable')) AS v (pos, action, detail);
UPDATE libos_pgbench.processes SET generation = generation + 1, updated_at = 1 WHERE pid = :pid;
NOTIFY libos_pgbench;
END;
