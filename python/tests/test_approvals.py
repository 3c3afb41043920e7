"""Approvals and questions decided from Python."""

import pytest

import libos

WRITE = [("write_file", {"path": "report.md", "content": "# Report\n"}), ("exit", {"result": "wrote it"})]


def parked_write(kernel, workspace):
    pid = kernel.spawn("assistant", "write the report", workspace=str(workspace), grants=["write fs:report.md ask"])
    kernel.run(libos.ScriptedModel(WRITE))
    [request] = kernel.pending()
    return pid, request


def test_an_approval_decided_from_python_runs_the_parked_call(kernel, workspace):
    pid, request = parked_write(kernel, workspace)
    assert kernel.process(pid)["state_detail"] == {"on": {"human": request["id"]}}
    assert {k: request[k] for k in ("pid", "kind", "tool", "args", "resource", "right", "status")} == {
        "pid": pid,
        "kind": "approval",
        "tool": "write_file",
        "args": {"path": "report.md", "content": "# Report\n"},
        "resource": "fs:report.md",
        "right": "write",
        "status": "open",
    }
    assert not (workspace / "report.md").exists()
    decided = kernel.approve(request["id"])
    assert (decided["status"], decided["grant"]) == ("approved", None)
    kernel.run(libos.ScriptedModel(WRITE))
    assert (workspace / "report.md").read_text() == "# Report\n"
    assert kernel.result(pid) == "wrote it"
    assert [r["actor"] for r in kernel.audit(tool="approve")] == ["human:operator"]
    with pytest.raises(libos.Refused):
        kernel.approve(request["id"])


def test_a_denial_reaches_the_model_as_the_result(kernel, workspace):
    pid, request = parked_write(kernel, workspace)
    decided = kernel.deny(request["id"], reason="not today", always=True)
    assert decided["status"] == "denied" and decided["grant"] is not None
    kernel.run(libos.ScriptedModel(WRITE))
    [write] = kernel.transcript(pid)["quanta"][0]["tool_calls"]
    assert (write["outcome"], "not today" in write["result"]) == ("denied", True)
    assert not (workspace / "report.md").exists()
    assert [(g["resource"], g["effect"]) for g in kernel.caps(pid) if g["id"] == decided["grant"]] == [
        ("fs:report.md", "deny")
    ]


def test_a_question_is_answered_from_python(kernel, workspace):
    steps = [("ask_human", {"question": "Which file?"}), ("exit", {"result": "asked"})]
    pid = kernel.spawn("assistant", "ask", workspace=str(workspace))
    kernel.run(libos.ScriptedModel(steps))
    [q] = kernel.pending()
    assert (q["kind"], q["question"]) == ("question", "Which file?")
    with pytest.raises(ValueError):
        kernel.answer(q["id"], "  ")
    kernel.answer(q["id"], "notes.txt")
    kernel.run(libos.ScriptedModel(steps))
    [asked] = kernel.transcript(pid)["quanta"][0]["tool_calls"]
    assert "notes.txt" in asked["result"]
    assert kernel.result(pid) == "asked"
