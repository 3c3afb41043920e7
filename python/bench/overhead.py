"""The run an experiment makes, timed from Python (issue 20's overhead figure).

The same run as ``cargo run --release -p libos-bench -- scripted AGENTS
QUANTA``: AGENTS assistant processes in an SQLite file store, each playing
QUANTA - 1 ``now`` calls and an ``exit``, under one scheduler of
concurrency 16 until idle, no budget limits. Prints the scheduler run's
wall time per quantum; spawning (one call from Python per process) apart.
With ``--python-tool``, the ``now`` calls go to a Python tool instead (a
side figure: what a Python tool costs per call, attaching to the
interpreter and its intent and result records included).

    python python/bench/overhead.py [AGENTS] [QUANTA] [--python-tool]
"""

import platform
import sys
import tempfile
import time
from pathlib import Path

import libos


def main() -> None:
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    agents = int(numbers[0]) if numbers else 1000
    quanta = int(numbers[1]) if len(numbers) > 1 else 10
    python_tool = "--python-tool" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        k = libos.Kernel(str(Path(tmp) / "bench.db"))
        image, tool = "assistant", "now"
        if python_tool:
            k.tool(lambda: "ok", name="noop", description="Does nothing.")
            image, tool = "bench", "noop"
            k.register_image(
                {"name": image, "version": "1", "system_prompt": "x", "tools": ["noop", "exit"], "grants": ["exec tool:noop"]}
            )
        unlimited = {"quanta": None, "tool_calls": None, "wall_time": None}
        started = time.perf_counter()
        for i in range(agents):
            k.spawn(image, f"agent {i}", budget=unlimited, workspace=tmp)
        spawn = time.perf_counter() - started
        steps = [(tool, {})] * (quanta - 1) + [("exit", {"result": "done"})]
        model = libos.ScriptedModel(steps, image=image)
        started = time.perf_counter()
        summary = k.run(model, concurrency=16)
        run = time.perf_counter() - started
        assert len(summary["finished"]) == agents, summary["finished"][:3]
        n = summary["quanta"]
        what = "calling a Python tool" if python_tool else "(the same run as libos-bench scripted)"
        print(f"scenario: scripted run from Python {what}")
        print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
        print(f"parameters: {agents} agents x {quanta} quanta, scripted model, SQLite file store, concurrency 16")
        print(
            f"result: spawn {spawn:.2f} s; run {n} quanta in {run:.2f} s: "
            f"{run * 1e6 / n:.1f} us per quantum ({n / run:.0f} quanta/s)"
        )


if __name__ == "__main__":
    main()
