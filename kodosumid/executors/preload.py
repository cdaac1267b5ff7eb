"""What warm executors import before their first launch: CrewAI only for a catalog that has
CrewAI flows. Importing it costs an executor ~2 s and ~180 MB; a node of plain Python
flows must not pay that.

Whether a flow uses CrewAI is read from its source, never by importing it (the node does
not import flows or `engine`): a YAML crew spec does; a module does when its source
mentions `crewai` or the engine's crew adapter. A module that cannot be found is assumed
to (preloading is the safe side: it only costs time).
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

# The preload that imports CrewAI (and sets its offline switches): PoolConfig's default.
CREW_PRELOAD = "engine.crew.listener"
_CREW_MARKERS = ("crewai", "engine.crew")


def _module_source(module: str, python_path: Sequence[str]) -> str | None:
    """The source text of `module`, found on python_path then sys.path, without running
    any package's `__init__`."""
    parts = module.split(".")
    search: list[str] | None = [*python_path, *sys.path]
    spec = None
    for depth in range(1, len(parts) + 1):
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        return Path(spec.origin).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def uses_crewai(entrypoint: str, python_path: Sequence[str]) -> bool:
    if entrypoint.endswith((".yaml", ".yml")):
        return True
    module = entrypoint.split(":", 1)[0]
    if ":" not in entrypoint:
        module = module.rsplit(".", 1)[0]  # a dotted path ends with the attribute
    source = _module_source(module, python_path)
    if source is None:
        return True
    return any(marker in source for marker in _CREW_MARKERS)


def effective_preload(
    preload: Iterable[str], entrypoints: Iterable[str], python_path: Sequence[str]
) -> tuple[str, ...]:
    """`preload` without the CrewAI preload when no flow of the catalog uses CrewAI."""
    modules = tuple(preload)
    if CREW_PRELOAD not in modules:
        return modules
    if any(uses_crewai(e, python_path) for e in entrypoints):
        return modules
    return tuple(m for m in modules if m != CREW_PRELOAD)
