"""The LangGraph half of `libos-bench langgraph`: the same workload as the
libos half, in LangGraph's idiom.

AGENTS agents run at once (asyncio), each a ReAct loop: a model node whose
chat model answers at once with one call of a `now` tool, CALLS - 1 times,
then a final answer; a ToolNode runs the tool. The model is in-process and
instant on both sides, so what is measured is the runtime's own cost per
model call: building the request, routing, running the tool, and (with
`--durable`) checkpointing every step to an SQLite file, as libos commits
every quantum to its store.

Prints one JSON object: wall and CPU seconds, model calls, CPU per call.
"""

import argparse
import asyncio
import datetime
import json
import os
import tempfile
import time
from typing import Any, List, Optional

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def now() -> str:
    """The current time (UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class ScriptedChat(BaseChatModel):
    """Calls `now` until the conversation holds `calls - 1` tool results, then answers."""

    calls: int = 10

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools, **kwargs):  # the script knows its one tool
        return self

    def _answer(self, messages: List[BaseMessage]) -> ChatResult:
        done = sum(1 for m in messages if m.type == "tool")
        if done + 1 < self.calls:
            message = AIMessage(content="", tool_calls=[{"name": "now", "args": {}, "id": f"call_{done}"}])
        else:
            message = AIMessage(content="done")
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: List[BaseMessage],
        stop: Optional[List[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(messages)

    async def _agenerate(
        self,
        messages: List[BaseMessage],
        stop: Optional[List[str]] = None,
        run_manager: Optional[AsyncCallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(messages)


def graph(calls: int, checkpointer):
    model = ScriptedChat(calls=calls).bind_tools([now])
    counted = {"n": 0}

    async def agent(state: MessagesState):
        counted["n"] += 1
        return {"messages": [await model.ainvoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([now]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=checkpointer), counted


async def run(agents: int, calls: int, durable: bool) -> dict:
    async def go(checkpointer):
        app, counted = graph(calls, checkpointer)
        limit = {"recursion_limit": 4 * calls + 10}
        wall, cpu = time.perf_counter(), time.process_time()
        results = await asyncio.gather(
            *[
                app.ainvoke(
                    {"messages": [("user", f"agent {i}: tell the time {calls - 1} times")]},
                    {**limit, "configurable": {"thread_id": str(i)}},
                )
                for i in range(agents)
            ]
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finished = sum(1 for r in results if r["messages"][-1].content == "done")
        assert finished == agents, f"{finished} of {agents} agents finished"
        return {"wall_s": wall, "cpu_s": cpu, "model_calls": counted["n"]}

    if durable:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        with tempfile.TemporaryDirectory() as d:
            async with AsyncSqliteSaver.from_conn_string(os.path.join(d, "checkpoints.db")) as saver:
                out = await go(saver)
    else:
        out = await go(None)
    out["cpu_per_call_us"] = out["cpu_s"] * 1e6 / out["model_calls"]
    out["durable"] = durable
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("agents", type=int, nargs="?", default=100)
    p.add_argument("calls", type=int, nargs="?", default=10)
    p.add_argument("--durable", action="store_true", help="checkpoint every step to an SQLite file")
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.agents, a.calls, a.durable))))


if __name__ == "__main__":
    main()
