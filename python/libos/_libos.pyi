"""Type stubs of libos's native module (``libos._libos``).

Values are the HTTP API's JSON shapes; the TypedDicts below name the
fields of the common ones (every field is always present; a value that
does not apply is None).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypedDict, Union, final

__all__ = [
    "Error",
    "Events",
    "Kernel",
    "NotFound",
    "Refused",
    "Run",
    "ScriptedModel",
    "StoreError",
    "__version__",
    "current_call",
]

__version__: str

class Error(Exception):
    """Any libos failure."""

class NotFound(Error):
    """No such process, image, request, grant or memory object."""

class Refused(Error):
    """Refused where things stand: killing an ended process, deciding a request twice."""

class StoreError(Error):
    """The store cannot be used: missing, not a libos store, locked, unreachable."""

class Usage(TypedDict):
    quanta: int
    model_calls: int
    tokens_in: int
    tokens_out: int
    tokens_estimated: bool
    tool_calls: int
    cost_usd: float
    children: int

class Process(TypedDict):
    pid: int
    ppid: Optional[int]
    image: str
    image_digest: str
    goal: str
    workspace: str
    state: str
    """runnable, running, waiting, paused, exited, failed or killed."""
    state_detail: Dict[str, Any]
    """exited: {code, result}; failed: {kind, error}; killed: {by, reason};
    waiting: {on: {human | child | message | timer: ...}}; paused: {was}."""
    priority: int
    generation: int
    usage: Usage
    budget: Dict[str, Union[int, float]]
    held_for_children: Dict[str, Union[int, float]]
    budget_left: Dict[str, Union[int, float]]
    created_at: str
    updated_at: str

class AuditRecord(TypedDict):
    seq: int
    at: str
    actor: str
    kind: str
    action: str
    pid: Optional[int]
    args: Any
    args_sha256: str
    decision: Optional[str]
    grant: Optional[int]
    outcome: str
    result_digest: Optional[str]
    detail: Optional[str]
    prev_hash: str
    hash: str

class Request(TypedDict):
    id: int
    pid: int
    image: str
    goal: str
    kind: str
    """approval or question."""
    tool: str
    args: Any
    args_sha256: str
    resource: Optional[str]
    right: Optional[str]
    question: Optional[str]
    hints: Optional[Dict[str, Any]]
    status: str
    created_at: str

class Decided(Request):
    grant: Optional[int]

class Verify(TypedDict):
    ok: bool
    records: int
    unsealed: int
    head: str
    first_bad_seq: Optional[int]
    problem: Optional[str]

class Head(TypedDict):
    seq: int
    hash: str

class Grant(TypedDict):
    id: int
    holder: int
    resource: str
    rights: str
    effect: str
    uses_left: Optional[int]
    expires_at: Optional[str]
    delegable: bool
    parent: Optional[int]
    granted_by: str
    status: str

class Finished(TypedDict):
    pid: int
    state: str
    state_detail: Dict[str, Any]

class Summary(TypedDict):
    quanta: int
    cancelled: int
    finished: List[Finished]
    recovered: List[int]
    backing_off: bool

class Event(TypedDict):
    event: str
    """process, approval or audit."""
    seq: int
    data: Dict[str, Any]

class Call(TypedDict):
    tool: str
    pid: Optional[int]
    workspace: str

def current_call() -> Optional[Call]:
    """The Python tool call running on this thread (its process and workspace), or None outside one."""

Step = Union[Tuple[str], Tuple[str, Mapping[str, Any]], Mapping[str, Any]]
Model = Union[None, str, "ScriptedModel"]

@final
class ScriptedModel:
    """A model that plays scripted tool calls, one step per model call."""

    def __new__(
        cls, steps: Optional[Sequence[Step]] = None, *, image: Optional[str] = None, goal_contains: Optional[str] = None
    ) -> ScriptedModel: ...
    @staticmethod
    def from_toml(text: str) -> ScriptedModel:
        """A script in the TOML format of ``libos run --script FILE``."""
    def add(
        self, steps: Sequence[Step], *, image: Optional[str] = None, goal_contains: Optional[str] = None
    ) -> ScriptedModel:
        """Adds an agent playing `steps`; returns the model."""

@final
class Run:
    """A scheduler running in the background."""

    def stop(self) -> Summary:
        """Stops the scheduler (in-flight quanta are given back) and returns its summary."""
    def wait(self, timeout: Optional[float] = None) -> Optional[Summary]:
        """Waits until the run ends by itself; its summary, or None after `timeout` seconds."""
    @property
    def done(self) -> bool:
        """True once the scheduler has stopped."""
    def __enter__(self) -> Run: ...
    def __exit__(self, *exc: object) -> bool: ...

@final
class Events:
    """The audit log's events as they commit."""

    def __iter__(self) -> Events: ...
    def __next__(self) -> Event: ...
    def poll(self, timeout: float = 0.0) -> Optional[Event]:
        """The next event, or None if none came within `timeout` seconds."""
    @property
    def after(self) -> int:
        """The sequence number of the last record read."""

class Kernel:
    """A libos kernel over a store: ":memory:", an SQLite file or a postgres:// URL."""

    def __new__(cls, store: str = ":memory:", *, config: Optional[str] = None) -> Kernel: ...
    @property
    def store(self) -> str:
        """The store, as shown to people (a URL without its password)."""
    def images(self) -> List[Dict[str, Any]]:
        """The images processes may be spawned from."""
    def image(self, name: str) -> Dict[str, Any]:
        """One image, with its spec text (``spec``)."""
    def register_image(self, spec: Union[str, Mapping[str, Any]]) -> str:
        """Adds an image from its TOML text or a dict; returns its name."""
    def _register_tool(self, name: str, description: str, schema: Mapping[str, Any], func: Any) -> None: ...
    def spawn(
        self,
        image: str,
        goal: str,
        *,
        grants: Sequence[str] = ...,
        budget: Optional[Mapping[str, Union[int, float, str, None]]] = None,
        workspace: Optional[str] = None,
        priority: int = 0,
    ) -> int:
        """Spawns a root process of `image` and returns its pid."""
    def run(self, model: Model = None, *, concurrency: int = 16, poll_ms: int = 20) -> Summary:
        """Runs the scheduler until nothing is runnable; Ctrl-C stops it cleanly."""
    def start(
        self, model: Model = None, *, concurrency: int = 16, until_idle: bool = False, poll_ms: int = 20
    ) -> Run:
        """Starts the scheduler in the background."""
    def processes(self, all: bool = False) -> List[Process]:
        """Live processes (every process with ``all=True``), in pid order."""
    def process(self, pid: int) -> Process:
        """One process, with its children's pids (``children``)."""
    def result(self, pid: int) -> Any:
        """What a process exited with (JSON text decoded); None unless it exited."""
    def transcript(self, pid: int) -> Dict[str, Any]:
        """``{"process": ..., "quanta": [{"quantum", "model_calls", "tool_calls"}]}``."""
    def inbox(self, pid: int) -> List[Dict[str, Any]]:
        """A process's messages, read and unread."""
    def memory(self, pid: int) -> List[Dict[str, Any]]:
        """A process's memory view (handles, without content)."""
    def memory_object(self, oid: int) -> Dict[str, Any]:
        """One memory object, with its content."""
    def caps(self, pid: int) -> List[Grant]:
        """A process's grants, with where each stands."""
    def audit(
        self,
        *,
        pid: Optional[int] = None,
        tool: Optional[str] = None,
        outcome: Optional[str] = None,
        after: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[AuditRecord]:
        """Audit records, oldest first."""
    def audit_head(self) -> Head:
        """The chain's head."""
    def verify(self, expect_head: Optional[str] = None) -> Verify:
        """Recomputes the audit chain."""
    def pending(self) -> List[Request]:
        """Open approval requests and questions."""
    def request(self, request: int) -> Request:
        """One request, open or decided."""
    def approve(self, request: int, *, always: bool = False) -> Decided:
        """Runs the parked call exactly as parked, once."""
    def deny(self, request: int, *, reason: Optional[str] = None, always: bool = False) -> Decided:
        """Refuses the parked call; the reason becomes its result."""
    def answer(self, request: int, text: str) -> Decided:
        """Answers an ``ask_human`` question."""
    def grant(self, pid: int, grant: str) -> int:
        """Adds a grant (``"read,write fs:data/** ask uses=3"``); returns its id."""
    def revoke(self, grant: int) -> Dict[str, int]:
        """Revokes a grant and everything derived from it."""
    def kill(self, pid: int, *, tree: bool = False, reason: Optional[str] = None) -> List[int]:
        """Kills a process in any live state; returns the pids killed."""
    def pause(self, pid: int) -> Dict[str, Any]:
        """Stops a process where it is."""
    def resume(self, pid: int) -> Dict[str, Any]:
        """Resumes a paused process in the state it was paused in."""
    def renice(self, pid: int, priority: int) -> int:
        """Changes a process's priority; returns the old one."""
    def send(self, pid: int, text: str, *, interrupt: bool = False, channel: Optional[str] = None) -> int:
        """Sends a message as the operator; returns its id."""
    def replay(self, pid: int) -> Dict[str, Any]:
        """Re-executes a finished process tree on its recorded answers and compares every call."""
    def _events(self, *, after: Optional[int] = None, idle_timeout: Optional[float] = None) -> Events: ...
