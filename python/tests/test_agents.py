"""Many agents on a scripted model, and what can be read back."""

import csv
import io

import pytest

import libos

LISTING = "notes.txt (18 bytes)"

STEPS = [
    ("list_dir", {"path": "."}),
    ("memory_write", {"name": "seen", "content": "a note", "kind": "note"}),
    {"say": "Record the work.", "tool": "now"},
    ("exit", {"result": "looked around and took a note"}),
]


def test_a_hundred_agents_run_to_their_results(kernel, workspace):
    pids = [kernel.spawn("assistant", f"agent {i}: look around", workspace=str(workspace)) for i in range(100)]
    summary = kernel.run(libos.ScriptedModel(STEPS))
    assert (summary["quanta"], summary["cancelled"], len(summary["finished"])) == (400, 0, 100)
    assert [kernel.result(p) for p in pids] == ["looked around and took a note"] * 100
    procs = kernel.processes(all=True)
    assert [(p["pid"], p["state"], p["usage"]["quanta"], p["usage"]["tool_calls"]) for p in procs] == [
        (p, "exited", 4, 4) for p in pids
    ]
    assert kernel.processes() == []
    # Spawn, then per quantum a lease, a tool record and a state change.
    assert len(kernel.audit()) == 100 * (1 + 4 * 3)
    report = kernel.verify()
    assert (report["ok"], report["records"], report["first_bad_seq"]) == (True, 1300, None)
    assert kernel.verify(expect_head=kernel.audit_head()["hash"])["ok"]
    # The tabulation a notebook does, with the standard library.
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["pid", "state", "goal"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(procs)
    assert out.getvalue().splitlines()[1] == f"{pids[0]},exited,agent 0: look around"


def test_what_a_process_did_is_read_back(kernel, workspace):
    pid = kernel.spawn("assistant", "look around", workspace=str(workspace), budget={"quanta": 8})
    kernel.run(libos.ScriptedModel(STEPS))
    p = kernel.process(pid)
    assert (p["state"], p["state_detail"], p["children"], p["budget"]["quanta"]) == (
        "exited",
        {"code": 0, "result": "looked around and took a note"},
        [],
        8,
    )
    quanta = kernel.transcript(pid)["quanta"]
    assert [(q["quantum"], [c["tool"] for c in q["tool_calls"]]) for q in quanta] == [
        (1, ["list_dir"]),
        (2, ["memory_write"]),
        (3, ["now"]),
        (4, ["exit"]),
    ]
    assert quanta[0]["tool_calls"][0]["result"] == LISTING
    assert quanta[2]["model_calls"][0]["rationale"] == "Record the work."
    [handle] = kernel.memory(pid)
    assert (handle["name"], handle["kind"]) == ("seen", "note")
    assert kernel.memory_object(handle["oid"])["content"] == "a note"
    assert [r["action"] for r in kernel.audit(pid=pid, tool="list_dir")] == ["list_dir"]
    assert [(r["kind"], r["action"]) for r in kernel.audit(pid=pid, limit=2)] == [("tool", "exit"), ("state", "exit")]


def test_a_result_in_json_is_a_python_value(kernel, workspace):
    pid = kernel.spawn("assistant", "count", workspace=str(workspace))
    kernel.run(libos.ScriptedModel([("exit", {"result": '{"files": 1, "names": ["notes.txt"]}'})]))
    assert kernel.result(pid) == {"files": 1, "names": ["notes.txt"]}
    live = kernel.spawn("assistant", "not yet", workspace=str(workspace))
    assert kernel.result(live) is None


def test_images_from_toml_text_and_from_a_dict(kernel, workspace):
    name = kernel.register_image(
        'name = "lister"\nversion = "1"\nsystem_prompt = "List."\ntools = ["list_dir", "exit"]\n'
        'grants = ["read fs:**"]\n[budget]\nquanta = 3\n'
    )
    assert name == "lister"
    image = kernel.image("lister")
    assert (image["tools"], image["grants"], image["budget"]) == (["list_dir", "exit"], ["read fs:** allow"], {"quanta": 3})
    kernel.register_image({"name": "quiet", "version": "2", "system_prompt": "Exit.", "tools": ["exit"]})
    assert {"lister", "quiet", "assistant"} <= {i["name"] for i in kernel.images()}
    pid = kernel.spawn("quiet", "leave", workspace=str(workspace))
    kernel.run(libos.ScriptedModel([("exit", {"result": "bye"})], image="quiet"))
    assert kernel.result(pid) == "bye"
    with pytest.raises(ValueError, match="unknown tool"):
        kernel.register_image({"name": "bad", "version": "1", "system_prompt": "x", "tools": ["teleport"]})
    with pytest.raises(libos.NotFound, match="nope"):
        kernel.spawn("nope", "goal", workspace=str(workspace))


def test_a_file_store_keeps_what_was_run(tmp_path, workspace):
    db = tmp_path / "exp.db"
    k = libos.Kernel(str(db))
    pid = k.spawn("assistant", "finish", workspace=str(workspace))
    k.run(libos.ScriptedModel([("exit", {"result": "kept"})]))
    del k
    again = libos.Kernel(str(db))
    assert (again.store, again.result(pid), again.verify()["ok"]) == (str(db), "kept", True)


def test_a_script_in_toml_plays_as_the_cli_plays_it(kernel, workspace):
    script = '[[agent]]\nimage = "assistant"\n[[agent.step]]\ntool = "exit"\nargs = { result = "from toml" }\n'
    pid = kernel.spawn("assistant", "go", workspace=str(workspace))
    kernel.run(libos.ScriptedModel.from_toml(script))
    assert kernel.result(pid) == "from toml"


def test_a_replay_matches_the_original(kernel, workspace):
    pid = kernel.spawn("assistant", "look around", workspace=str(workspace))
    kernel.run(libos.ScriptedModel(STEPS))
    report = kernel.replay(pid)
    assert report["matches"]
    [p] = report["processes"]
    assert [c["tool"] for c in p["original_calls"]] == ["list_dir", "memory_write", "now", "exit"]
    assert p["original_calls"] == p["replay_calls"]
