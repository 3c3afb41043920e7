"""Ctrl-C (KeyboardInterrupt) stops a run cleanly, in the foreground and the background."""

import _thread
import threading

import pytest

import libos

# A model that thinks for a day: every quantum is in flight when the interrupt comes.
SLOW = libos.ScriptedModel([{"tool": "exit", "args": {"result": "slow"}, "delay_ms": 86_400_000}])
FAST = libos.ScriptedModel([("exit", {"result": "fast"})])


def interrupt_when_running(kernel, n, ready=None):
    """Interrupts the main thread once `n` processes are running (or after
    30 s), and once `ready` is set: the main thread sets it just before it
    blocks, so that the interrupt reaches the call under test."""

    def watch():
        if ready is not None:
            ready.wait(30)
        events = kernel.events(after=0, idle_timeout=30)
        running = set()
        for e in events:
            if e["event"] == "process" and e["data"]["state"] == "running":
                running.add(e["data"]["pid"])
                if len(running) == n:
                    break
        _thread.interrupt_main()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def assert_left_clean(kernel, pids):
    assert [(p["pid"], p["state"]) for p in kernel.processes()] == [(p, "runnable") for p in pids]
    assert kernel.verify()["ok"]
    # Nothing was lost: another run finishes every process.
    summary = kernel.run(FAST)
    assert len(summary["finished"]) == len(pids)
    assert [kernel.result(p) for p in pids] == ["fast"] * len(pids)


def test_a_keyboard_interrupt_stops_a_foreground_run_cleanly(kernel, workspace):
    pids = [kernel.spawn("assistant", f"think {i}", workspace=str(workspace)) for i in range(4)]
    watcher = interrupt_when_running(kernel, 4)
    with pytest.raises(KeyboardInterrupt):
        kernel.run(SLOW, concurrency=4)
    watcher.join()
    assert_left_clean(kernel, pids)


def test_a_keyboard_interrupt_while_waiting_stops_a_background_run_cleanly(kernel, workspace):
    pids = [kernel.spawn("assistant", f"think {i}", workspace=str(workspace)) for i in range(3)]
    run = kernel.start(SLOW, concurrency=3)
    ready = threading.Event()
    watcher = interrupt_when_running(kernel, 3, ready)
    with pytest.raises(KeyboardInterrupt):
        ready.set()
        run.wait()
    watcher.join()
    summary = run.stop()
    assert (summary["quanta"], summary["cancelled"], run.done) == (0, 3, True)
    assert_left_clean(kernel, pids)


def test_a_background_run_stops_with_its_block(kernel, workspace):
    pids = [kernel.spawn("assistant", f"think {i}", workspace=str(workspace)) for i in range(2)]
    with kernel.start(SLOW, concurrency=2) as run:
        events = kernel.events(after=0, idle_timeout=30)
        running = set()
        for e in events:
            if e["event"] == "process" and e["data"]["state"] == "running":
                running.add(e["data"]["pid"])
                if running == set(pids):
                    break
        assert not run.done
    assert run.done
    assert_left_clean(kernel, pids)


def test_a_background_run_until_idle_ends_by_itself(kernel, workspace):
    pids = [kernel.spawn("assistant", f"go {i}", workspace=str(workspace)) for i in range(10)]
    run = kernel.start(FAST, until_idle=True)
    summary = run.wait(timeout=60)
    assert summary is not None and len(summary["finished"]) == 10
    assert run.wait() == summary
    assert [kernel.result(p) for p in pids] == ["fast"] * 10


def test_a_collected_run_handle_stops_its_run(kernel, workspace):
    import gc

    pids = [kernel.spawn("assistant", "think", workspace=str(workspace))]
    run = kernel.start(SLOW)
    for e in kernel.events(after=0, idle_timeout=30):
        if e["event"] == "process" and e["data"]["state"] == "running":
            break
    del run
    gc.collect()
    assert_left_clean(kernel, pids)
