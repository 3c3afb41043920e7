"""Fixtures of the libos pytest suite: a kernel per test, and a workspace."""

import pytest

import libos


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A kernel on an in-memory store, with no libos.toml around it."""
    monkeypatch.chdir(tmp_path)
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "LIBOS_MODEL"):
        monkeypatch.delenv(var, raising=False)
    return libos.Kernel(":memory:")


@pytest.fixture
def workspace(tmp_path):
    """A workspace directory holding one file."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("a file to look at\n")
    return ws
