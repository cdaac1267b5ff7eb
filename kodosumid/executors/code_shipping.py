"""The flows' code as a Ray runtime environment, so executors on any host of the cluster can
import it without the node's folders existing there.

The catalog's entrypoints name modules (`flows.basic:hello` → `flows`); each one found under
the node's `python_path` is shipped with `py_modules` (Ray packs it once, content-hashed,
and unpacks it on each host). Modules not found there (installed packages such as
`kodosumi` and `engine`) must be installed on every Ray host. A YAML crew spec is a file on
the node's disk: keep it inside a shipped package folder to use it on other hosts.

The job also gets a `working_dir`: a small folder of the node's state, the executors'
working directory on every host. Without one, Ray puts the driver's own working directory
and script folder on every worker's `sys.path` ("assumes that the directory structures on
the machines in the clusters are the same"): on another host such a path means nothing or,
worse, holds other code of the same name, which would shadow the shipped flows.
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


WORKDIR_README = """\
The working directory of this node's executors on every host of its Ray cluster, shipped
with the job (Ray's runtime environment `working_dir`). Kept empty on purpose: the flows'
code travels as `py_modules`; see kodosumid/executors/code_shipping.py.
"""


def executor_workdir(state_dir: Path) -> Path:
    """The (nearly empty) folder shipped as the job's `working_dir`, in the node's state."""
    folder = state_dir / "executor-workdir"
    folder.mkdir(parents=True, exist_ok=True)
    readme = folder / "README.txt"
    if not readme.exists() or readme.read_text() != WORKDIR_README:
        readme.write_text(WORKDIR_README)  # same bytes every start: Ray uploads it once
    return folder


def code_runtime_env(
    entrypoints: Iterable[str], python_path: Iterable[str], workdir: Path
) -> dict[str, Any]:
    """The runtime environment for the driver's job on a cluster."""
    env: dict[str, Any] = {
        "working_dir": str(workdir),
        # Caches and bytecode are not code: they only make the packages bigger.
        "excludes": ["__pycache__", "*.pyc", ".pytest_cache"],
    }
    modules = flow_modules(entrypoints, python_path)
    if modules:
        env["py_modules"] = modules
    return env
