"""`koco` traces when the standard OTEL_* variables say so, and not otherwise: the real
`koco run` (a process of its own) against a real node, both exporting to a loopback OTLP
receiver. One command is one trace, from `koco run` through the node to the executor.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

from tests.node.helpers import eventually
from tests.observability.collector import Collector
from tests.observability.conftest import exporting

KOCO = [sys.executable, "-m", "kodoclient"]


def _koco(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KOCO, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_one_trace_per_koco_run_only_when_asked(collector: Collector, nodes: Any) -> None:
    node = await nodes(node_id="cli-traced", telemetry=exporting(collector))
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    where = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]

    # Not asked: koco exports nothing.
    quiet = await asyncio.to_thread(_koco, base, *where, "run", "hello", "-i", "name=quiet")
    assert quiet.returncode == 0, quiet.stderr
    # koco has exited: what it would have exported was answered by the collector before.
    assert not [s for s in collector.spans if s.service == "koco"]

    env = {
        **base,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.endpoint}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }
    traced = await asyncio.to_thread(_koco, env, *where, "run", "hello", "-i", "name=traced")
    assert traced.returncode == 0, traced.stderr
    # The command's spans are sent before it exits.
    koco_spans = [s for s in collector.spans if s.service == "koco"]
    [root] = [s for s in koco_spans if s.name == "koco run"]
    assert not root.parent_id
    assert {s.trace_id for s in koco_spans} == {root.trace_id}  # one trace, not one per call
    execution_id = root.attributes["kodosumi.execution_id"]
    names = {s.name for s in koco_spans}
    assert {"kodoclient LaunchExecution", "kodoclient WatchExecution"} <= names

    async def node_and_executor_joined() -> bool:
        in_trace = {s.name for s in collector.spans if s.trace_id == root.trace_id}
        return {
            "kodosumi.v1.FlowService/LaunchExecution",
            "kodosumi.v1.FlowService/WatchExecution",
            "execution hello",
        } <= in_trace

    await eventually(node_and_executor_joined, timeout=30)
    run = next(
        s for s in collector.spans if s.name == "execution hello" and s.trace_id == root.trace_id
    )
    assert run.attributes["kodosumi.execution_id"] == execution_id
