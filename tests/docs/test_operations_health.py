"""docs/operations.md's health check works as written: its shell block against a real node
(mTLS with the dev credentials, found through `$KODOSUMI_HOME` as the doc says)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.node.conftest import NodeFactory, ray_cluster, start_node

__all__ = ["ray_cluster", "start_node"]  # the node fixtures, used here too

REPO = Path(__file__).resolve().parents[2]


def health_block() -> str:
    text = (REPO / "docs" / "operations.md").read_text()
    after = text[text.index("<!-- health-check") :]
    match = re.search(r"```bash\n(.*?)```", after, re.DOTALL)
    assert match is not None
    return match.group(1)


def run_block(state: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["KODOSUMI_HOME"] = str(state)
    return subprocess.run(
        ["bash", "-c", health_block()],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_health_check_works_as_written(start_node: NodeFactory, tmp_path: Path) -> None:
    node = await start_node(state_dir=tmp_path / "state", node_id="health-node")
    done = await asyncio.to_thread(run_block, tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SERVING"
    await node.app.stop()
    stopped = await asyncio.to_thread(run_block, tmp_path / "state")
    assert stopped.returncode != 0  # no node.json, nothing listening: not healthy
