"""The notebook-style example runs, so it cannot rot."""

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "thousand_agents.py"


def test_the_thousand_agents_example_tabulates_every_agent(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=True
    ).stdout
    lines = out.splitlines()
    assert lines[0].startswith("1000 agents spawned in ") and lines[0].endswith("; 3000 quanta; 333 approvals waiting")
    assert lines[2:7] == [
        "group    state    end               agents",
        "careful  exited   exit 0               333",
        "greedy   failed   budget_exhausted     333",
        "notes    exited   exit 0               334",
        "",
    ]
    assert "write_file calls: {'denied': 166, 'ok': 167, 'parked': 333, 'pending': 167}" in lines
    assert "audit: 13165 records, chain intact" in lines
