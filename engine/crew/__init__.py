"""CrewAI support: run crews, CrewAI Flows and YAML crew specs, and stream every step they take.

What imports crewai (about 2 s and 180 MB) is loaded lazily, on first use of one of the
names below that needs it, so that a node can read YAML specs and the example catalog, and
an executor of plain flows can start, without paying for it:

- `run_crewai(target, ctx)`: what the engine's CrewAI adapter calls (see `engine.adapters`);
- `observe(ctx)`: a context manager that streams the CrewAI events of any code run inside
  it (e.g. a plain callable that kicks off a crew itself) as events of `ctx`'s execution;
- `OfflineLLM`, `make_llm(name)`: the deterministic offline model (`offline/scripted`) and
  the resolution of model names used by YAML specs and the examples;
- `crew_factory`, `load_spec`, `CrewSpecError`: crewai-free.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from engine.crew.llm import OFFLINE_MODEL
from engine.crew.spec import CrewSpecError, load_spec

# Before crewai is first imported: an executor runs unattended, so no telemetry, no
# version check and no first-run trace prompt unless the operator asks for them by
# setting these variables. (OTEL_SDK_DISABLED is deliberately left alone: it would also
# silence kodosumi's own OpenTelemetry.)
for _name, _value in (
    ("CREWAI_DISABLE_TELEMETRY", "true"),
    ("CREWAI_DISABLE_VERSION_CHECK", "true"),
    ("CREWAI_TRACING_ENABLED", "false"),
):
    os.environ.setdefault(_name, _value)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "OFFLINE_MODEL",
    "CrewSpecError",
    "OfflineLLM",
    "crew_factory",
    "load_spec",
    "make_llm",
    "observe",
    "run_crewai",
]


def crew_factory(fn: F) -> F:
    """Mark a function that builds a Crew (or a CrewAI Flow) as a CrewAI entrypoint.

    The engine calls it once per execution (so executions never share agents or tasks),
    binding its parameters like a plain flow's (`inputs`, `ctx`, or input names), and
    kicks off what it returns with the execution's inputs.
    """
    fn.__crewai__ = True  # type: ignore[attr-defined]
    return fn


_LAZY = {
    "run_crewai": "engine.crew.adapter",
    "observe": "engine.crew.listener",
    "OfflineLLM": "engine.crew.offline_llm",
    "make_llm": "engine.crew.llm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.crew' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
