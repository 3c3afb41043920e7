"""The same kernel on PostgreSQL: a store shared by URL."""

import os

import pytest

import libos

URL = os.environ.get("LIBOS_PYTEST_POSTGRES")


@pytest.mark.skipif(not URL, reason="LIBOS_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test)")
def test_agents_and_an_approval_on_a_postgresql_store(workspace):
    k = libos.Kernel(URL)
    assert k.store.startswith("postgres://")
    pids = [k.spawn("assistant", f"agent {i}", workspace=str(workspace)) for i in range(10)]
    writer = k.spawn("assistant", "[write] report", workspace=str(workspace), grants=["write fs:r.md ask"])
    model = libos.ScriptedModel([("write_file", {"path": "r.md", "content": "r"}), ("exit", {"result": "wrote"})],
                                image="assistant", goal_contains="[write]")
    model.add([("list_dir", {"path": "."}), ("exit", {"result": "done"})], image="assistant")
    k.run(model)
    [request] = k.pending()
    k.approve(request["id"])
    k.run(model)
    assert [k.result(p) for p in pids + [writer]] == ["done"] * 10 + ["wrote"]
    assert (workspace / "r.md").read_text() == "r"
    # A second kernel on the same URL sees the same store.
    other = libos.Kernel(URL)
    assert (len(other.processes(all=True)), other.verify()["ok"]) == (11, True)
