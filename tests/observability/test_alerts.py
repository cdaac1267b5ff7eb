"""Alert rules on a real node: a failing flow raises an alert that reaches an HTTP webhook on
loopback (after the receiver's first refusal, by retrying), the operator stream, the SDK
and `koco alerts`; a long input wait raises one while it lasts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kodoclient import AsyncClient, ConnectConfig
from kodoclient.cli import main
from kodosumi.v1 import event_pb2
from kodosumid.observability.rules import AlertRule, AlertsConfig, Webhook
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, eventually, launch
from tests.observability.conftest import Telemetry


class HookReceiver:
    """An HTTP server on 127.0.0.1:0 that answers the scripted statuses, then 200."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.attempts += 1
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.received.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[HookReceiver]:
    receiver = HookReceiver(503)  # refuses the first delivery: the node must retry
    yield receiver
    receiver.close()


def client_of(node: RunningNode) -> AsyncClient:
    return AsyncClient(ConnectConfig(target=node.app.address, tls=node.app.client_files.read()))


async def koco(node: RunningNode, *args: str) -> Result:
    options = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


async def test_a_failing_flow_alerts_the_webhook_the_stream_and_the_cli(
    telemetry: Telemetry, nodes: Any, hook: HookReceiver
) -> None:
    alerts = AlertsConfig(
        rules=(AlertRule("execution_failed", name="flow-failed", severity="critical"),),
        webhooks=(
            Webhook(
                hook.url,
                headers=(("Authorization", "Bearer t0ken"),),
                backoff_seconds=0.05,
                max_backoff_seconds=0.2,
            ),
        ),
        evaluate_interval_seconds=0.2,
    )
    node = await nodes(node_id="alerting-node", alerts=alerts)
    async with client_of(node) as client:
        following = client.alerts(0, follow=True)
        next_alert = asyncio.ensure_future(following.__anext__())

        async def listening() -> bool:
            return node.app.observability.log.follower_count == 1

        await eventually(listening, timeout=10)
        failed = await launch(node.flows, "fails")
        await collect(node.flows, failed)
        execution = await client.get_execution(failed)

        async def delivered() -> bool:
            return bool(hook.received)

        await eventually(delivered, timeout=20)
        [payload] = hook.received
        assert hook.attempts >= 2  # the 503 was retried
        assert hook.headers[0]["Authorization"] == "Bearer t0ken"
        assert payload["rule"] == "flow-failed" and payload["severity"] == "critical"
        assert payload["execution_id"] == failed and payload["flow"] == "fails"
        assert payload["node_id"] == "alerting-node" and payload["state"] == "firing"

        # The follower that was listening before the failure got the same alert live.
        live = await asyncio.wait_for(next_alert, 10)
        await following.aclose()
        assert live.execution_id == failed and live.alert.rule == "flow-failed"
        assert live.trace_id == execution.trace_id  # from the alert to the run's trace
        stored = [e async for e in client.alerts(0)]
        assert [e.seq for e in stored] == [1]

    shown = await koco(node, "alerts")
    assert shown.exit_code == 0, shown.output
    assert "flow-failed" in shown.output and failed in shown.output
    as_json = await koco(node, "--json", "alerts", "--after-seq", "0")
    [line] = as_json.output.splitlines()
    assert json.loads(line)["alert"]["severity"] == "ALERT_SEVERITY_CRITICAL"


async def test_a_long_input_wait_alerts_while_it_lasts(telemetry: Telemetry, nodes: Any) -> None:
    alerts = AlertsConfig(
        rules=(AlertRule("awaiting_input", after_seconds=0.3),), evaluate_interval_seconds=0.1
    )
    node = await nodes(node_id="waiting-node", alerts=alerts)
    execution_id = await launch(node.flows, "asks")
    async with client_of(node) as client:
        stream = client.alerts(0, follow=True)
        fired = await asyncio.wait_for(stream.__anext__(), 20)
        assert fired.alert.kind == "awaiting_input" and fired.execution_id == execution_id
        [request] = await client.pending_inputs(execution_id)
        await client.provide_input(execution_id, request.request_id, {"n": 3})
        resolved = await asyncio.wait_for(stream.__anext__(), 20)
        await stream.aclose()
    assert resolved.alert.resolved and resolved.execution_id == execution_id
    assert resolved.alert.severity == event_pb2.ALERT_SEVERITY_INFO
