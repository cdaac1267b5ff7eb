"""Run `python -m engine.catalog_check` and read its verdicts: the one way a node
(`kodosumid` at start, `--check`, `--reload`) and `koco validate` check flows without
importing them (or the engine) in their own process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Importing a catalog may import CrewAI (~2 s); a module that hangs on import must not
# hold the node's start forever.
CHECK_TIMEOUT_SECONDS = 120.0
# Schemas of a large catalog fit easily; a verdict larger than this is refused.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FlowCheck:
    """What the check process found for one flow."""

    errors: tuple[str, ...] = ()
    input_schema: dict[str, Any] | None = None
    description: str = ""
    files: tuple[str, ...] = ()


class CheckFailed(Exception):
    """The check process did not answer (crashed, timed out, not startable)."""


def check_env(python_path: Sequence[str]) -> dict[str, str]:
    env = dict(os.environ)
    paths = [*python_path, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
    env.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")
    return env


async def run_check(
    entries: Iterable[tuple[str, str]],
    python_path: Sequence[str],
    limit_seconds: float = CHECK_TIMEOUT_SECONDS,
) -> dict[str, FlowCheck]:
    """Check `(name, entrypoint)` pairs in a process of their own."""
    request = {
        "python_path": list(python_path),
        "flows": [{"name": n, "entrypoint": e} for n, e in entries],
    }
    with tempfile.TemporaryDirectory(prefix="kodosumi-check-") as folder:
        answer_file, log_file = Path(folder) / "answer.json", Path(folder) / "output.log"
        await _run(request, answer_file, log_file, python_path, limit_seconds)
        answer = await asyncio.to_thread(_read_answer, answer_file)
    return {
        name: FlowCheck(
            errors=tuple(str(e) for e in raw.get("errors", ())),
            input_schema=raw.get("input_schema"),
            description=str(raw.get("description", "")),
            files=tuple(str(f) for f in raw.get("files", ())),
        )
        for name, raw in answer.get("flows", {}).items()
    }


async def _run(
    request: dict[str, Any],
    answer_file: Path,
    log_file: Path,
    python_path: Sequence[str],
    limit_seconds: float,
) -> None:
    # What the flows print while they import goes to a file, never into the node's memory
    # (a module may print without end); the verdict goes to a file of its own.
    with log_file.open("wb") as log:
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "engine.catalog_check",
                str(answer_file),
                stdin=asyncio.subprocess.PIPE,
                stdout=log,
                stderr=log,
                env=check_env(python_path),
            )
        except OSError as e:
            raise CheckFailed(f"cannot start the catalog check: {e}") from None
        try:
            await asyncio.wait_for(process.communicate(json.dumps(request).encode()), limit_seconds)
        except asyncio.CancelledError:
            process.kill()
            raise
        except TimeoutError:
            process.kill()
            await process.wait()
            raise CheckFailed(f"the catalog check took longer than {limit_seconds:g} s") from None
    if process.returncode != 0:
        tail = (await asyncio.to_thread(_tail, log_file)).strip().splitlines()[-3:]
        said = f": {' / '.join(tail)}" if tail else ""
        raise CheckFailed(f"the check process exited with code {process.returncode}{said}")


def _tail(path: Path, size: int = 4096) -> str:
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - size))
        return file.read().decode(errors="replace")


def _read_answer(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_ANSWER_BYTES:
            raise CheckFailed(f"the catalog check answered more than {MAX_ANSWER_BYTES} bytes")
        answer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CheckFailed("the catalog check answered no verdict") from None
    if not isinstance(answer, dict):
        raise CheckFailed("the catalog check answered no verdict")
    return answer
