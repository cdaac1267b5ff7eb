"""How the engine runs what an entrypoint resolves to.

An adapter accepts a target (a callable, a CrewAI object, a YAML spec) and runs it to a
result in the calling thread. Plain Python callables are built in; CrewAI support lives in
`engine.crew` and is imported only when a CrewAI target is met, so that executors of plain
flows never pay for importing crewai.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from engine import events
from engine.context import FlowContext
from engine.loader import YamlSpecFile
from engine.signature_schema import build_arguments


class Adapter(Protocol):
    def accepts(self, target: Any) -> bool: ...

    def run(self, target: Any, ctx: FlowContext) -> Any: ...


def _is_crewai(target: Any) -> bool:
    if isinstance(target, YamlSpecFile):
        return True
    classes = target.__mro__ if inspect.isclass(target) else type(target).__mro__
    if any(c.__module__.startswith("crewai") for c in classes):
        return True
    # @CrewBase classes are wrapped by crewai; factories are marked by the examples.
    return bool(getattr(target, "is_crew_class", False) or getattr(target, "__crewai__", False))


class CrewAIAdapter:
    def accepts(self, target: Any) -> bool:
        return _is_crewai(target)

    def run(self, target: Any, ctx: FlowContext) -> Any:
        from engine.crew.adapter import run_crewai

        return run_crewai(target, ctx)


_CONTEXT_NAMES = ("ctx", "context")


def _call_arguments(fn: Callable[..., Any], ctx: FlowContext) -> tuple[list[Any], dict[str, Any]]:
    """Bind the flow's parameters: `ctx`/`context` (or a FlowContext annotation) get the context,
    `inputs` gets the whole input dict, other names are filled from the inputs by name; a single
    other positional parameter that is not an input name gets the whole dict."""
    inputs = dict(ctx.inputs)
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [inputs], {}
    kwargs: dict[str, Any] = {}
    free: list[inspect.Parameter] = []
    var_kw = False
    for p in params:
        annotation = (
            p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        )
        if p.name in _CONTEXT_NAMES or annotation == "FlowContext":
            kwargs[p.name] = ctx
        elif p.name == "inputs":
            kwargs[p.name] = inputs
        elif p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        elif p.name in inputs:
            kwargs[p.name] = inputs.pop(p.name)
        else:
            free.append(p)
    if var_kw:
        kwargs.update({k: v for k, v in inputs.items() if k not in kwargs})
    elif len(free) == 1 and free[0].default is inspect.Parameter.empty:
        kwargs[free[0].name] = inputs
    kwargs = build_arguments(fn, kwargs)
    positional = [
        kwargs.pop(p.name) for p in params if p.kind is p.POSITIONAL_ONLY and p.name in kwargs
    ]
    return positional, kwargs


class CallableAdapter:
    """Sync functions, coroutines, generators and async generators that yield progress."""

    def accepts(self, target: Any) -> bool:
        return callable(target)

    def run(self, target: Any, ctx: FlowContext) -> Any:
        args, kwargs = _call_arguments(target, ctx)
        if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
            return ctx._run.run_async(lambda: _await_flow(target(*args, **kwargs), ctx))
        value = target(*args, **kwargs)
        if inspect.isgenerator(value):
            return _drain_generator(value, ctx)
        if inspect.isawaitable(value) or inspect.isasyncgen(value):
            return ctx._run.run_async(lambda: _await_flow(value, ctx))
        return value


def _drain_generator(generator: Any, ctx: FlowContext) -> Any:
    while True:
        try:
            item = next(generator)
        except StopIteration as stop:
            return stop.value
        ctx.emit(events.progress_from_yield(item))


async def _await_flow(value: Any, ctx: FlowContext) -> Any:
    if inspect.isasyncgen(value):
        # An async generator cannot `return` a value; it sets its result with ctx.set_result.
        async for item in value:
            ctx.emit(events.progress_from_yield(item))
        return None
    return await value


ADAPTERS: list[Adapter] = [CrewAIAdapter(), CallableAdapter()]


def adapter_for(target: Any) -> Adapter:
    for adapter in ADAPTERS:
        if adapter.accepts(target):
            return adapter
    raise TypeError(f"cannot run {type(target).__name__!r}: not callable, not a CrewAI object")
