"""Flows used by the node tests (imported inside executor actors as `tests.flowlib`)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Iterator
from typing import Any

from engine import FlowContext, Markdown

log = logging.getLogger("tests.flowlib")


def hello(name: str = "world", ctx: FlowContext | None = None) -> str:
    print(f"hello {name}")
    return f"hello {name}"


def emit_many(count: int, ctx: FlowContext) -> dict[str, int]:
    """Emits `count` progress events, as fast as the buffer takes them."""
    for i in range(count):
        ctx.progress(message=str(i))
    return {"emitted": count}


def emit_bytes(count: int, size: int, ctx: FlowContext) -> dict[str, int]:
    """Emits `count` progress events of about `size` bytes each (a large stream)."""
    text = "x" * size
    for _ in range(count):
        ctx.progress(message=text)
    return {"emitted": count}


def chatty(lines: int = 3) -> Markdown:
    for i in range(lines):
        print(f"line {i}")
    log.warning("a warning")
    return Markdown("# done")


async def async_hello(inputs: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return {"greeting": f"hi {inputs.get('name', 'you')}"}


def counting(steps: int = 3) -> Iterator[float]:
    for i in range(steps):
        yield (i + 1) / steps
    return "counted"  # type: ignore[return-value]  # a generator's return value is its result


def fails() -> None:
    raise ValueError("this flow always fails")


def fails_loudly(size: int) -> None:
    """Fails with a reason of `size` characters (the flow writes its failure's text)."""
    raise RuntimeError("r" * size)


def sleepy(seconds: float, ctx: FlowContext) -> str:
    """Sleeps cooperatively: a cancel wakes it up at once."""
    ctx.sleep(seconds)
    return "slept"


def stubborn(seconds: float) -> str:
    """Ignores cancellation (plain time.sleep in a loop): only a hard stop ends it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "never cancelled"


def asks(ctx: FlowContext) -> dict[str, Any]:
    answer = ctx.request_input(
        "How many?",
        schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    )
    return {"answer": answer}


def asks_with_timeout(ctx: FlowContext) -> Any:
    return ctx.request_input(
        "Approve?", kind="approval", timeout=0.5, default=False, on_timeout="default"
    )


def ticking(ticks: int, interval: float, ctx: FlowContext) -> dict[str, int]:
    """Emits one progress event per tick, slowly (a run that outlives a node restart)."""
    for i in range(ticks):
        ctx.progress((i + 1) / ticks, f"tick {i}")
        ctx.sleep(interval)
    return {"ticks": ticks}


def flaky(fail_times: int, ctx: FlowContext) -> dict[str, int]:
    """Fails its first `fail_times` attempts, then succeeds."""
    print(f"attempt {ctx.attempt}")
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"attempt {ctx.attempt} breaks on purpose")
    return {"attempt": ctx.attempt}


def parent_calls_child(name: str, ctx: FlowContext) -> dict[str, Any]:
    """Calls `hello` as a child execution and wraps its result."""
    return {"child_said": ctx.call_flow("hello", {"name": name})}


def parent_calls_failing(ctx: FlowContext) -> Any:
    """Calls `fails`; its ChildFlowFailed fails this execution."""
    return ctx.call_flow("fails")


def parent_calls_sleepy(ctx: FlowContext) -> Any:
    """Calls `sleepy` for a long time (a test cancels this parent)."""
    return ctx.call_flow("sleepy", {"seconds": 60})


def fans_out(count: int, seconds: float, parallel: bool, ctx: FlowContext) -> dict[str, Any]:
    """Calls `sleepy` `count` times (at once in threads, or one after the other) and says
    how each call went: "ok", or the refusal's status code and message."""
    import threading

    outcomes = [""] * count

    def call(i: int) -> None:
        try:
            ctx.call_flow("sleepy", {"seconds": seconds})
            outcomes[i] = "ok"
        except Exception as e:  # a refused launch is a grpc.RpcError with code() and details()
            code = getattr(e, "code", None)
            outcomes[i] = f"{code().name}: {e.details()}" if callable(code) else repr(e)

    if not parallel:
        for i in range(count):
            call(i)
        return {"outcomes": outcomes}
    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"outcomes": outcomes}


def loaded_modules(names: list[str]) -> dict[str, bool]:
    """Which of `names` the executor process has imported (by the time this flow runs)."""
    import sys

    return {name: name in sys.modules for name in names}


def file_echo(ctx: FlowContext, suffix: str = "") -> dict[str, Any]:
    """Reads every input file and writes each back as `<name>.out` (+ `suffix`); says where
    it read them and whether the paths were writable."""
    seen: dict[str, Any] = {}
    for name in ctx.files:
        path = ctx.files[name]
        data = path.read_bytes()
        writable = bool(stat.S_IMODE(path.stat().st_mode) & 0o222)
        saved = ctx.save_file(f"{name}.out", data + suffix.encode())
        seen[name] = {"size": len(data), "writable": writable, "out": saved.file_id}
    return {"files": seen, "pid": os.getpid()}


def forges_usage(ctx: FlowContext) -> str:
    """Tries to report its own (zero) usage before the engine does: refused."""
    from kodosumi.v1 import event_pb2

    forged = event_pb2.Event()
    forged.usage.attempt = 1
    try:
        ctx.emit(forged)
    except ValueError as e:
        return f"refused: {e}"
    return "emitted"


def burns_in_a_thread(seconds: float) -> str:
    """Spends `seconds` of CPU in a thread it starts, while its own thread only waits."""
    import threading

    def spin() -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()
    return "burnt"
