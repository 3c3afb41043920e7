"""Following the audit log as it commits, sync and async."""

import asyncio

import libos

STEPS = [("list_dir", {"path": "."}), ("exit", {"result": "done"})]


def test_events_follow_a_background_run(kernel, workspace):
    events = kernel.events()
    pid = kernel.spawn("assistant", "look", workspace=str(workspace))
    with kernel.start(libos.ScriptedModel(STEPS)):
        seen = []
        for e in events:
            seen.append(e)
            if e["event"] == "process" and e["data"]["state"] == "exited":
                break
    audit = [e["data"]["action"] for e in seen if e["event"] == "audit"]
    assert audit[0] == "spawn" and "list_dir" in audit and "exit" in audit
    assert [e["seq"] for e in seen if e["event"] == "audit"] == [r["seq"] for r in kernel.audit()][: len(audit)]
    assert seen[-1]["data"]["pid"] == pid
    # The rest of the run's records, then nothing: the iterator is at the head.
    while events.poll() is not None:
        pass
    assert (events.poll(0.05), events.after) == (None, kernel.audit_head()["seq"])


def test_an_approval_event_carries_the_request(kernel, workspace):
    pid = kernel.spawn("assistant", "write", workspace=str(workspace), grants=["write fs:out.md ask"])
    kernel.run(libos.ScriptedModel([("write_file", {"path": "out.md", "content": "x"})]))
    approvals = [e["data"] for e in kernel.events(after=0, idle_timeout=0) if e["event"] == "approval"]
    assert [(a["pid"], a["tool"], a["status"]) for a in approvals] == [(pid, "write_file", "open")]


def test_events_replay_from_the_start_and_end_when_idle(kernel, workspace):
    kernel.spawn("assistant", "look", workspace=str(workspace))
    kernel.run(libos.ScriptedModel(STEPS))
    seqs = [e["seq"] for e in kernel.events(after=0, idle_timeout=0.2) if e["event"] == "audit"]
    assert seqs == [r["seq"] for r in kernel.audit()]


def test_async_events_follow_a_run(kernel, workspace):
    async def follow():
        events = kernel.events()
        pid = kernel.spawn("assistant", "look", workspace=str(workspace))
        run = kernel.start(libos.ScriptedModel(STEPS))
        try:
            async for e in events:
                if e["event"] == "audit" and e["data"]["action"] == "exit":
                    return pid, e["data"]
        finally:
            run.stop()

    pid, record = asyncio.run(asyncio.wait_for(follow(), 60))
    assert (record["pid"], record["outcome"]) == (pid, "ok")
