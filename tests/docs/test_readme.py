"""The README's "your first flow" runs exactly as written: its shell block, in an empty
folder, with the venv's `bin` on PATH (where the README says the commands live)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- first-flow"


def first_flow_block() -> str:
    text = (REPO / "README.md").read_text()
    after = text[text.index(MARKER) :]
    match = re.search(r"```bash\n(.*?)```", after, re.DOTALL)
    assert match is not None, "no bash block after the first-flow marker"
    return match.group(1)


def test_the_block_is_five_lines() -> None:
    assert len(first_flow_block().strip().splitlines()) == 5


@pytest.mark.slow
def test_your_first_flow_runs_as_written(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        ["bash", "-e", "-c", first_flow_block()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "hello ada hello ada" in done.stdout
