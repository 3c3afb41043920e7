# %% [markdown]
# # A thousand agents, tabulated with the standard library
#
# An experiment in the shape a notebook gives it: one cell per step. A
# thousand processes run in-process on the libos kernel; a scripted model
# stands in for a real one, so the run needs no network and its outcome is
# known (pass a profile name of your `libos.toml` to `k.run` for a real
# model). Each agent looks at its workspace, and then, by its group:
#
# - `notes`: writes a note and exits with what it saw;
# - `careful`: writes a file it may only write with approval, which the
#   operator (this notebook) approves for even agents and denies for odd ones;
# - `greedy`: keeps looking until its budget of 4 quanta runs out.
#
# Run it as a script (`python thousand_agents.py [AGENTS]`) or cell by cell
# in Jupyter or VS Code (the `# %%` markers). pandas is not needed; with it,
# `pandas.DataFrame(rows)` takes the rows as they are.

# %%
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

import libos

AGENTS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1000
GROUPS = ["notes", "careful", "greedy"]

# %% 1. A kernel on a throwaway store, and a workspace to look at.
k = libos.Kernel(":memory:")
workspace = Path(tempfile.mkdtemp(prefix="libos-experiment-"))
(workspace / "data.csv").write_text("x,y\n1,2\n")

# %% 2. The model: one script per group (matched by a word of the goal).
look = ("list_dir", {"path": "."})
model = libos.ScriptedModel(
    [look, ("memory_write", {"name": "seen", "content": "data.csv"}), ("exit", {"result": '{"saw": 1}'})],
    image="assistant",
    goal_contains="[notes]",
)
model.add(
    [look, ("write_file", {"path": "out.txt", "content": "done\n"}), ("exit", {"result": '{"wrote": true}'})],
    image="assistant",
    goal_contains="[careful]",
)
model.add([look] * 10, image="assistant", goal_contains="[greedy]")

# %% 3. Spawn: the careful ones may write only with approval; everyone has 4 quanta
# (an approved call runs in a quantum of its own).
started = time.perf_counter()
group_of = {}
for i in range(AGENTS):
    group = GROUPS[i % len(GROUPS)]
    grants = ["write fs:out.txt ask"] if group == "careful" else []
    pid = k.spawn("assistant", f"[{group}] agent {i}", grants=grants, budget={"quanta": 4}, workspace=str(workspace))
    group_of[pid] = group
spawned = time.perf_counter() - started

# %% 4. Run until nothing can run: the careful agents are parked on approvals.
first = k.run(model, concurrency=32)
pending = k.pending()
print(f"{AGENTS} agents spawned in {spawned:.2f} s; {first['quanta']} quanta; {len(pending)} approvals waiting")

# %% 5. The operator decides from here, and the run goes on.
for request in pending:
    if request["pid"] % 2 == 0:
        k.approve(request["id"])
    else:
        k.deny(request["id"], reason="not this one")
second = k.run(model, concurrency=32)
elapsed = time.perf_counter() - started

# %% 6. One row per agent: how it ended, what it spent, what it said.
rows = []
for p in k.processes(all=True):
    detail = p["state_detail"]
    rows.append(
        {
            "pid": p["pid"],
            "group": group_of[p["pid"]],
            "state": p["state"],
            "end": detail["kind"] if p["state"] == "failed" else f"exit {detail.get('code')}",
            "quanta": p["usage"]["quanta"],
            "tool_calls": p["usage"]["tool_calls"],
            "tokens": p["usage"]["tokens_in"] + p["usage"]["tokens_out"],
            "result": k.result(p["pid"]),
        }
    )

# %% 7. Tabulate: outcomes by group, and the spread of tokens.
table = collections.Counter((r["group"], r["state"], str(r["end"])) for r in rows)
print(f"\n{'group':<8} {'state':<8} {'end':<17} {'agents':>6}")
for (group, state, end), n in sorted(table.items()):
    print(f"{group:<8} {state:<8} {end:<17} {n:>6}")
tokens = [r["tokens"] for r in rows]
print(f"\ntokens per agent (estimated): median {statistics.median(tokens)}, max {max(tokens)}")
decisions = collections.Counter(r["outcome"] for r in k.audit(tool="write_file"))
print(f"write_file calls: {dict(sorted(decisions.items()))}")
report = k.verify()
print(f"audit: {report['records']} records, chain {'intact' if report['ok'] else 'BROKEN'}")
print(f"quanta: {first['quanta'] + second['quanta']} in {elapsed:.2f} s")
