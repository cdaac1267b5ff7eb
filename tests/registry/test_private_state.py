"""A registry's state directory is 0700 and its database files 0600 (issue 11, item 5)."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.registry.conftest import RegistryFactory


async def test_the_state_directory_and_database_are_private(
    start_registry: RegistryFactory, tmp_path: Path
) -> None:
    state = tmp_path / "registry-state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # as an earlier version left it
    await start_registry(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    databases = [p for p in state.rglob("*") if ".sqlite" in p.name]
    assert databases
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in databases} == {
        p.name: 0o600 for p in databases
    }
