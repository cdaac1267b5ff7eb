"""The rooms' import boundaries (docs/architecture.md), checked on the source with `ast`.

Every import counts: at module level, inside functions, under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAEMONS = ("kodosumid", "registryd", "gateway")

# folder -> top-level packages it must never import
RULES: dict[str, tuple[str, ...]] = {
    "kodosumi": (*DAEMONS, "engine", "kodoclient", "ray"),
    "engine": ("grpc", *DAEMONS, "kodoclient", "ray"),
    "kodosumid/executions": ("grpc", "ray"),
    "kodosumid": ("registryd", "gateway", "kodoclient"),
    "registryd": ("kodosumid", "gateway", "kodoclient", "engine", "ray"),
    "gateway": ("kodosumid", "registryd", "engine", "ray"),
    "kodoclient": (*DAEMONS, "engine", "ray"),
}


def imports(folder: Path) -> Iterator[tuple[Path, int, str]]:
    """(file, line, imported module) for every absolute import under `folder`."""
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, node.lineno, alias.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.lineno, node.module


def violations(folder: str, banned: tuple[str, ...]) -> list[str]:
    root = REPO / folder
    return [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path, line, module in imports(root)
        if module.split(".")[0] in banned
    ]


@pytest.mark.parametrize("folder", sorted(RULES))
def test_a_room_imports_nothing_it_must_not(folder: str) -> None:
    if not (REPO / folder).is_dir():
        pytest.skip(f"{folder}/ does not exist (yet)")
    assert violations(folder, RULES[folder]) == []


def test_the_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: imports in functions and under TYPE_CHECKING are found too."""
    source = tmp_path / "room"
    source.mkdir()
    (source / "m.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import grpc.aio\n"
        "if TYPE_CHECKING:\n    from ray.actor import ActorHandle\n"
        "def f():\n    import kodosumid.app\n"
        "from . import sibling\n"
    )
    found = {module for _, _, module in imports(source)}
    assert found == {"typing", "grpc.aio", "ray.actor", "kodosumid.app"}


def test_the_executions_domain_loads_without_ray_or_grpc() -> None:
    """What the domain tests import (the service, the in-process executor, the store) pulls
    in neither Ray nor gRPC, in a fresh interpreter."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "import kodosumid.executions.service, kodosumid.executors.inprocess\n"
        "import kodosumid.event_store\n"
        "print(sorted(m for m in ('ray', 'grpc', 'crewai') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
