"""The flows' code as a Ray runtime environment, so executors on any host of the cluster can
import it without the node's folders existing there.

The catalog's entrypoints name modules (`flows.basic:hello` → `flows`); each one found under
the node's `python_path` is shipped with `py_modules` (Ray packs it once, content-hashed,
and unpacks it on each host). Modules not found there (installed packages such as
`kodosumi` and `engine`) must be installed on every Ray host. A YAML crew spec is a file on
the node's disk: keep it inside a shipped package folder to use it on other hosts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

YAML_SUFFIXES = (".yaml", ".yml")


def _top_module(entrypoint: str) -> str:
    module = entrypoint.split(":", 1)[0]
    return module.split(".", 1)[0]


def flow_modules(entrypoints: Iterable[str], python_path: Iterable[str]) -> list[str]:
    """Local package folders and module files that hold the flows, found under python_path."""
    roots = [Path(p) for p in python_path]
    tops = sorted({_top_module(e) for e in entrypoints if not e.endswith(YAML_SUFFIXES)})
    found: list[str] = []
    for top in tops:
        if not top.isidentifier():
            continue
        for root in roots:
            if (root / top).is_dir():
                found.append(str(root / top))
                break
            if (root / f"{top}.py").is_file():
                found.append(str(root / f"{top}.py"))
                break
    return found


def code_runtime_env(entrypoints: Iterable[str], python_path: Iterable[str]) -> dict[str, Any]:
    """The runtime environment for the driver's job (empty: nothing to ship)."""
    modules = flow_modules(entrypoints, python_path)
    if not modules:
        return {}
    # Caches and bytecode are not code: they only make the package bigger.
    return {"py_modules": modules, "excludes": ["__pycache__", "*.pyc", ".pytest_cache"]}
