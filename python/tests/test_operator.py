"""The operator's actions from Python: grants, signals, messages, errors."""

import pytest

import libos


def test_grants_are_added_listed_and_revoked(kernel, workspace):
    pid = kernel.spawn("assistant", "wait", workspace=str(workspace))
    gid = kernel.grant(pid, "read fs:data/** uses=3")
    [g] = [g for g in kernel.caps(pid) if g["id"] == gid]
    assert (g["resource"], g["rights"], g["effect"], g["uses_left"], g["status"]) == (
        "fs:data/**",
        "read",
        "allow",
        3,
        "live",
    )
    assert kernel.revoke(gid) == {"grant": gid, "derived": 0}
    assert [g["status"] for g in kernel.caps(pid) if g["id"] == gid] == ["revoked"]
    with pytest.raises(ValueError, match="right"):
        kernel.grant(pid, "fly fs:**")
    with pytest.raises(libos.NotFound):
        kernel.revoke(999)


def test_pause_resume_kill_and_messages(kernel, workspace):
    pid = kernel.spawn("assistant", "wait", workspace=str(workspace))
    assert kernel.pause(pid)["state"] == "paused"
    assert kernel.resume(pid)["state"] == "runnable"
    assert kernel.renice(pid, 5) == 0
    mid = kernel.send(pid, "hello", interrupt=True)
    [m] = kernel.inbox(pid)
    assert (m["id"], m["from"], m["kind"], m["body"]) == (mid, "human:operator", "interrupt", "hello")
    assert kernel.kill(pid, reason="enough") == [pid]
    p = kernel.process(pid)
    assert (p["state"], p["state_detail"]) == ("killed", {"by": "human:operator", "reason": "enough"})
    with pytest.raises(libos.Refused):
        kernel.kill(pid)


def test_bad_input_is_one_clear_error(kernel, workspace):
    with pytest.raises(libos.NotFound, match="999"):
        kernel.process(999)
    with pytest.raises(ValueError, match="positive"):
        kernel.process(0)
    with pytest.raises(ValueError, match="dimension"):
        kernel.spawn("assistant", "x", workspace=str(workspace), budget={"speed": 3})
    with pytest.raises(ValueError, match="does not exist"):
        kernel.spawn("assistant", "x", workspace=str(workspace / "nowhere"))
    with pytest.raises(ValueError, match="outcome"):
        kernel.audit(outcome="sideways")
    with pytest.raises(ValueError, match="step 0"):
        libos.ScriptedModel([("exit", "not a dict")])
    with pytest.raises(ValueError, match="no model profile"):
        kernel.run("nope")
    with pytest.raises(libos.StoreError):
        libos.Kernel(str(workspace))
    # Control characters and huge goals are the kernel's to judge, not lost.
    pid = kernel.spawn("assistant", "a\x1b[2J\u202egoal", workspace=str(workspace))
    assert kernel.process(pid)["goal"] == "a\x1b[2J\u202egoal"
    with pytest.raises(ValueError):
        kernel.spawn("assistant", "x" * (65 * 1024), workspace=str(workspace))


def test_a_run_without_a_model_says_what_to_configure(kernel, workspace):
    kernel.spawn("assistant", "x", workspace=str(workspace))
    with pytest.raises(ValueError, match="default"):
        kernel.run()


def test_names_with_control_characters_are_refused(kernel):
    with pytest.raises(ValueError):
        kernel.tool(lambda: "", name="bad\x1bname", schema={"type": "object"})
    with pytest.raises(ValueError):
        kernel.register_image({"name": "evil\n[x]", "version": "1", "system_prompt": "x", "tools": ["exit"]})
    with pytest.raises(ValueError, match="TOML text or a dict"):
        kernel.register_image(["not", "a", "spec"])
    with pytest.raises(OverflowError):
        kernel.process(2**70)
