"""libos: an operating system for LLM agents, in-process.

Agents run as processes of a kernel: each has a pid, a goal, a workspace,
capability grants and a budget; the scheduler gives each runnable process
a quantum (one model call that must choose exactly one tool call, checked
against its grants and audited). This package is the Rust kernel and
scheduler themselves, driven from Python::

    import libos

    k = libos.Kernel(":memory:")
    model = libos.ScriptedModel([("list_dir", {"path": "."}), ("exit", {"result": "done"})])
    pids = [k.spawn("assistant", f"agent {i}: look around") for i in range(100)]
    k.run(model)                                   # until nothing is runnable
    print({k.result(p) for p in pids}, k.verify()["ok"])

Everything comes back as the HTTP API's JSON shapes (dicts and lists).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Dict, Iterator, Optional, TypeVar, overload

from . import _libos
from ._libos import Error, NotFound, Refused, Run, ScriptedModel, StoreError
from ._schema import description_of, schema_of

__all__ = [
    "Error",
    "Events",
    "Kernel",
    "NotFound",
    "Refused",
    "Run",
    "ScriptedModel",
    "StoreError",
    "schema_of",
]
__version__: str = _libos.__version__

F = TypeVar("F", bound=Callable[..., Any])

#: How long one wait of the async iterator lasts on its thread, in seconds.
_ASYNC_SLICE = 0.1


class Events:
    """The audit log's events as they commit, like the console's stream.

    Each event is ``{"event": "process" | "approval" | "audit", "seq": N,
    "data": {...}}``: for every new audit record, the process it changed
    (as it is now), the request it opened or decided, then the record.
    Iterate with ``for`` (blocks; Ctrl-C stops it) or ``async for``;
    ``poll(timeout)`` returns the next event or None.
    """

    def __init__(self, native: _libos.Events) -> None:
        self._native = native

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self

    def __next__(self) -> Dict[str, Any]:
        return next(self._native)

    def poll(self, timeout: float = 0.0) -> Optional[Dict[str, Any]]:
        """The next event, or None if none came within `timeout` seconds."""
        return self._native.poll(timeout)

    @property
    def after(self) -> int:
        """The sequence number of the last record read."""
        return self._native.after

    def __aiter__(self) -> AsyncIterator[Dict[str, Any]]:
        return self._follow()

    async def _follow(self) -> AsyncIterator[Dict[str, Any]]:
        loop = asyncio.get_running_loop()
        while True:
            event = await loop.run_in_executor(None, self._native.poll, _ASYNC_SLICE)
            if event is not None:
                yield event


class Kernel(_libos.Kernel):
    __doc__ = _libos.Kernel.__doc__

    @overload
    def tool(self, func: F) -> F: ...

    @overload
    def tool(
        self,
        func: None = None,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        schema: Optional[Dict[str, Any]] = None,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        func: Optional[F] = None,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        schema: Optional[Dict[str, Any]] = None,
    ) -> Any:
        """Registers a Python callable as a tool; use it bare or with options.

        ``@k.tool`` names the tool after the function, describes it by its
        docstring's first paragraph and derives its argument schema from
        its type hints (see ``schema_of``); `name`, `description` and
        `schema` (a JSON schema of an object) say otherwise. A process
        calls it only if its image lists it and it holds ``exec
        tool:NAME`` (``ask`` parks the call for approval, as for any
        tool). The function gets the arguments by keyword; a ``str`` it
        returns is the result, anything else is sent as JSON, and an
        exception becomes a tool error the model sees. Register tools
        before the images that name them.
        """

        def register(f: F) -> F:
            tool_name = name or f.__name__
            text = description if description is not None else description_of(f)
            self._register_tool(tool_name, text or f"the Python function {tool_name}", schema or schema_of(f), f)
            return f

        return register(func) if func is not None else register

    def events(self, *, after: Optional[int] = None, idle_timeout: Optional[float] = None) -> Events:
        """Events of the audit records after `after` (default: from now on).

        ``after=0`` replays the whole log first. With `idle_timeout`, a
        ``for`` loop ends once no event came for that many seconds.
        """
        return Events(self._events(after=after, idle_timeout=idle_timeout))
