"""A real model profile of a libos.toml, served here by a mock OpenAI-compatible server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import libos


class Mock(BaseHTTPRequestHandler):
    requests = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Mock.requests.append((self.path, body))
        call = {"id": "c1", "type": "function", "function": {"name": "exit", "arguments": '{"result": "from the mock"}'}}
        answer = {
            "id": "r1",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                         "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def mock_server():
    Mock.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Mock)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_a_configured_profile_runs_the_agents(tmp_path, workspace, mock_server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "libos.toml"
    config.write_text(
        f'[models.local]\nbase_url = "{mock_server}"\nmodel = "mock-1"\ncall_mode = "native"\nmax_retries = 0\n'
    )
    k = libos.Kernel(":memory:", config=str(config))
    pids = [k.spawn("assistant", f"agent {i}", workspace=str(workspace)) for i in range(3)]
    with pytest.raises(ValueError, match="default"):
        k.run()  # the assistant's own profile, `default`, is not configured
    k.run("local")
    assert [k.result(p) for p in pids] == ["from the mock"] * 3
    assert [p["usage"]["tokens_in"] + p["usage"]["tokens_out"] for p in k.processes(all=True)] == [120] * 3
    assert {path for path, _ in Mock.requests} == {"/v1/chat/completions"}
    assert len(Mock.requests) == 3
    # One request per agent, each carrying that agent's goal.
    assert all(any(f"agent {i}" in json.dumps(body) for _, body in Mock.requests) for i in range(3))


def test_the_images_own_profile_is_used_without_a_model(tmp_path, workspace, mock_server):
    config = tmp_path / "libos.toml"
    config.write_text(f'[models.default]\nbase_url = "{mock_server}"\nmodel = "mock-1"\ncall_mode = "native"\n')
    k = libos.Kernel(":memory:", config=str(config))
    pid = k.spawn("assistant", "go", workspace=str(workspace))
    k.run()
    assert k.result(pid) == "from the mock"
    assert Mock.requests[0][1]["model"] == "mock-1"
