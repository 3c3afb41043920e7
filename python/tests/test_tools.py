"""Python callables as tools: capability checks, approvals, errors, audit."""

from typing import List, Literal, Optional

import pytest

import libos

LIBRARIAN = {
    "name": "librarian",
    "version": "1",
    "system_prompt": "Look words up.",
    "tools": ["lookup", "exit"],
    "grants": ["exec tool:lookup ask"],
}


def register_lookup(kernel, calls):
    @kernel.tool
    def lookup(word: str, limit: int = 3) -> str:
        """Look a word up in the dictionary.

        The rest of the docstring is not the description."""
        calls.append((word, limit))
        if word == "missing":
            raise KeyError(f"no entry for {word}")
        return f"{word}: a definition"

    return lookup


def steps(word):
    return [("lookup", {"word": word}), ("exit", {"result": "looked it up"})]


def test_a_python_tool_under_ask_runs_once_approved(kernel, workspace):
    calls = []
    register_lookup(kernel, calls)
    kernel.register_image(LIBRARIAN)
    pid = kernel.spawn("librarian", "define kernel", workspace=str(workspace))
    model = libos.ScriptedModel(steps("kernel"), image="librarian")
    kernel.run(model)
    [request] = kernel.pending()
    assert (request["tool"], request["args"], request["resource"], request["right"]) == (
        "lookup",
        {"word": "kernel"},
        "tool:lookup",
        "exec",
    )
    assert calls == []
    kernel.approve(request["id"])
    kernel.run(model)
    assert calls == [("kernel", 3)]
    [call] = kernel.transcript(pid)["quanta"][0]["tool_calls"]
    assert (call["tool"], call["outcome"], call["result"]) == ("lookup", "ok", "kernel: a definition")
    assert kernel.result(pid) == "looked it up"
    records = [(r["action"], r["outcome"], r["decision"]) for r in kernel.audit(pid=pid, tool="lookup")]
    # Parked on the ask, the intent record before the call, its result under the approval.
    assert records == [("lookup", "parked", "ask"), ("lookup", "pending", None), ("lookup", "ok", "approved")]
    assert kernel.verify()["ok"]


def test_an_exception_is_a_tool_error_the_model_sees(kernel, workspace):
    calls = []
    register_lookup(kernel, calls)
    kernel.register_image(dict(LIBRARIAN, grants=["exec tool:lookup"]))
    pid = kernel.spawn("librarian", "define missing", workspace=str(workspace))
    kernel.run(libos.ScriptedModel(steps("missing"), image="librarian"))
    [call] = kernel.transcript(pid)["quanta"][0]["tool_calls"]
    assert (call["outcome"], call["result"]) == ("error", "KeyError: 'no entry for missing'")
    assert kernel.result(pid) == "looked it up"


def test_without_a_grant_the_tool_is_denied(kernel, workspace):
    calls = []
    register_lookup(kernel, calls)
    kernel.register_image(dict(LIBRARIAN, grants=[]))
    pid = kernel.spawn("librarian", "define kernel", workspace=str(workspace))
    kernel.run(libos.ScriptedModel(steps("kernel"), image="librarian"))
    [call] = kernel.transcript(pid)["quanta"][0]["tool_calls"]
    assert (call["outcome"], calls) == ("denied", [])


def test_arguments_outside_the_schema_are_rejected_before_the_tool_runs(kernel, workspace):
    calls = []
    register_lookup(kernel, calls)
    kernel.register_image(dict(LIBRARIAN, grants=["exec tool:lookup"]))
    pid = kernel.spawn("librarian", "define", workspace=str(workspace))
    bad = [("lookup", {"word": 7}), ("lookup", {"word": "ok", "extra": 1}), ("exit", {"result": "gave up"})]
    kernel.run(libos.ScriptedModel(bad, image="librarian"))
    assert calls == []
    rejected = [r["outcome"] for r in kernel.audit(pid=pid, tool="lookup")]
    assert rejected == ["rejected", "rejected"]


def test_a_tool_returning_data_sends_json_and_an_explicit_schema_is_used(kernel, workspace):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    kernel.tool(lambda n: {"squares": [i * i for i in range(n)]}, name="squares", description="Squares.", schema=schema)
    kernel.register_image(
        {"name": "math", "version": "1", "system_prompt": "x", "tools": ["squares", "exit"], "grants": ["exec tool:squares"]}
    )
    pid = kernel.spawn("math", "square", workspace=str(workspace))
    kernel.run(libos.ScriptedModel([("squares", {"n": 4}), ("exit", {"result": "done"})], image="math"))
    [call] = kernel.transcript(pid)["quanta"][0]["tool_calls"]
    assert call["result"] == '{"squares":[0,1,4,9]}'


def test_tool_names_are_checked(kernel):
    with pytest.raises(ValueError, match="read_file"):
        kernel.tool(lambda path: "", name="read_file", schema={"type": "object"})
    with pytest.raises(ValueError):
        kernel.tool(lambda: "", name="no spaces allowed", schema={"type": "object"})


def test_schemas_come_from_type_hints():
    def f(path: str, lines: List[int], mode: Literal["r", "w"] = "r", note: Optional[str] = None, deep: bool = False):
        """Do things."""

    assert libos.schema_of(f) == {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "lines": {"type": "array", "items": {"type": "integer"}},
            "mode": {"enum": ["r", "w"], "default": "r"},
            "note": {"type": "string"},
            "deep": {"type": "boolean", "default": False},
        },
        "required": ["path", "lines"],
        "additionalProperties": False,
    }

    def g(*args):
        pass

    with pytest.raises(TypeError, match="args"):
        libos.schema_of(g)


def test_a_tool_may_read_the_kernel_but_not_run_a_scheduler(kernel, workspace):
    seen = {}

    @kernel.tool
    def inspect_self() -> str:
        """Look at the process table from inside a tool."""
        seen["processes"] = [p["pid"] for p in kernel.processes()]
        kernel.run(libos.ScriptedModel([("exit", {"result": "nested"})]))
        return "unreachable"

    kernel.register_image(
        {"name": "self", "version": "1", "system_prompt": "x", "tools": ["inspect_self", "exit"],
         "grants": ["exec tool:inspect_self"]}
    )
    pid = kernel.spawn("self", "look", workspace=str(workspace))
    kernel.run(libos.ScriptedModel([("inspect_self", {}), ("exit", {"result": "done"})], image="self"))
    [call] = kernel.transcript(pid)["quanta"][0]["tool_calls"]
    assert seen == {"processes": [pid]}
    assert (call["outcome"], call["result"]) == (
        "error",
        "Error: a scheduler cannot be run or waited for from inside a Python tool",
    )


def test_what_a_tool_returns_is_bounded_and_must_be_json(kernel, workspace):
    kernel.tool(lambda: "x" * (300 * 1024), name="huge", schema={"type": "object"})
    kernel.tool(lambda: object(), name="opaque", schema={"type": "object"})
    kernel.register_image(
        {"name": "odd", "version": "1", "system_prompt": "x", "tools": ["huge", "opaque", "exit"],
         "grants": ["exec tool:*"]}
    )
    pid = kernel.spawn("odd", "call", workspace=str(workspace))
    kernel.run(libos.ScriptedModel([("huge", {}), ("opaque", {}), ("exit", {"result": "done"})], image="odd"))
    calls = [q["tool_calls"][0] for q in kernel.transcript(pid)["quanta"][:2]]
    assert [(c["tool"], c["outcome"]) for c in calls] == [("huge", "error"), ("opaque", "error")]
    assert calls[0]["result"] == "the tool returned 307200 bytes, over the limit of 262144"
    assert calls[1]["result"] == (
        "the tool's return value must be a str or JSON-like (dicts, lists, numbers): unsupported type object"
    )
    assert kernel.result(pid) == "done"
