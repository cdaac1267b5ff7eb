"""Alert rules, the operator stream and webhook delivery, driven by an injected clock and
scripted receivers: no node, no sleeping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kodosumi.errors import InvalidArgument
from kodosumi.v1 import event_pb2
from kodosumid.event_store import ExecutionRecord, StatusChange
from kodosumid.observability.alert_log import AlertLog
from kodosumid.observability.alerts import AlertEngine, NetworkView, PeerState
from kodosumid.observability.rules import (
    DEFAULT_RULES,
    AlertRule,
    AlertsConfig,
    Webhook,
    alerts_config,
)
from kodosumid.observability.webhooks import Answer, WebhookSender, alert_payload
from kodosumid.observability.wiring import HeartbeatWatch

S = event_pb2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(execution_id: str = "e1", flow: str = "hello") -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=execution_id,
        flow=flow,
        owner="spiffe://t/user/ada",
        status=S.EXECUTION_STATUS_PENDING,
        status_reason="",
        inputs={},
        create_ns=1,
        trace_id="ab" * 16,
    )


def engine(
    *rules: AlertRule, network: NetworkView | None = None, clock: Clock | None = None
) -> tuple[AlertEngine, list[event_pb2.Event]]:
    raised: list[event_pb2.Event] = []
    config = AlertsConfig(rules=rules)
    alert_engine = AlertEngine(
        config, "node-a", raised.append, network=network, clock=clock or Clock()
    )
    return alert_engine, raised


def change(status: int, reason: str = "", seq: int = 5) -> list[StatusChange]:
    return [StatusChange(seq, status, reason)]


def test_a_failed_execution_raises_one_alert_naming_the_run_and_its_trace() -> None:
    rules = (AlertRule("execution_failed", name="failed", severity="critical", flows=("fails",)),)
    alerts, raised = engine(*rules)
    alerts.stored(record("e1", "hello"), 1, change(S.EXECUTION_STATUS_FAILED, "boom"))
    assert raised == []  # another flow
    alerts.stored(record("e2", "fails"), 1, change(S.EXECUTION_STATUS_FAILED, "RuntimeError: x"))
    [event] = raised
    assert event.execution_id == "e2" and event.trace_id == "ab" * 16
    alert = event.alert
    assert (alert.rule, alert.kind, alert.flow, alert.node_id) == (
        "failed",
        "execution_failed",
        "fails",
        "node-a",
    )
    assert alert.severity == S.ALERT_SEVERITY_CRITICAL and not alert.resolved
    assert "RuntimeError: x" in alert.message


def test_a_timed_out_execution_raises_its_own_rule() -> None:
    alerts, raised = engine(*DEFAULT_RULES)
    alerts.stored(record(), 1, change(S.EXECUTION_STATUS_TIMED_OUT, "timed out after 1s"))
    assert [e.alert.kind for e in raised] == ["execution_timed_out"]
    alerts.stored(record(), 1, change(S.EXECUTION_STATUS_SUCCEEDED))
    alerts.stored(record(), 1, change(S.EXECUTION_STATUS_CANCELLED))
    assert len(raised) == 1


def test_awaiting_input_fires_once_after_the_threshold_and_resolves() -> None:
    clock = Clock()
    alerts, raised = engine(AlertRule("awaiting_input", after_seconds=60), clock=clock)
    alerts.stored(record(), 2, change(S.EXECUTION_STATUS_AWAITING_INPUT))
    clock.now += 59
    alerts.evaluate()
    assert raised == []
    clock.now += 2
    alerts.evaluate()
    alerts.evaluate()
    [fired] = raised
    assert fired.execution_id == "e1" and fired.alert.labels["waiting_seconds"] == "61.0"
    alerts.stored(record(), 2, change(S.EXECUTION_STATUS_RUNNING))
    assert [e.alert.resolved for e in raised] == [False, True]


def test_error_rate_over_a_window() -> None:
    clock = Clock()
    rule = AlertRule("error_rate", window_seconds=60, threshold=0.5, min_executions=4)
    alerts, raised = engine(rule, clock=clock)
    for status in (
        S.EXECUTION_STATUS_FAILED,
        S.EXECUTION_STATUS_FAILED,
        S.EXECUTION_STATUS_SUCCEEDED,
    ):
        alerts.stored(record(), 1, change(status))
    alerts.evaluate()
    assert raised == []  # three ended: fewer than min_executions
    alerts.stored(record(), 1, change(S.EXECUTION_STATUS_TIMED_OUT))
    alerts.evaluate()
    alerts.evaluate()
    [fired] = raised
    assert fired.alert.labels["failed"] == "3" and fired.alert.labels["ended"] == "4"
    clock.now += 61  # the failures leave the window
    alerts.evaluate()
    assert [e.alert.resolved for e in raised] == [False, True]


def test_node_offline_and_heartbeat_lag_fire_and_clear() -> None:
    peers = [PeerState("node-b", offline=False)]
    lag: list[float | None] = [None]
    network = NetworkView(peers=lambda: list(peers), heartbeat_lag=lambda: lag[0])
    alerts, raised = engine(
        AlertRule("node_offline"), AlertRule("heartbeat_lag", threshold_seconds=30), network=network
    )
    alerts.evaluate()
    assert raised == []
    peers[0] = PeerState("node-b", offline=True, reason="the registry lists it OFFLINE")
    lag[0] = 45.0
    alerts.evaluate()
    alerts.evaluate()
    assert sorted((e.alert.kind, e.alert.subject_node_id) for e in raised) == [
        ("heartbeat_lag", "node-a"),
        ("node_offline", "node-b"),
    ]
    peers[0] = PeerState("node-b", offline=False)
    lag[0] = 0.0
    alerts.evaluate()
    assert [e.alert.resolved for e in raised[2:]] == [True, True]


def test_heartbeat_watch_measures_how_overdue_the_heartbeat_is() -> None:
    class Registration:
        heartbeats, registrations, interval = 0, 1, 10.0

    clock = Clock()
    registration = Registration()
    watch = HeartbeatWatch(lambda: registration, clock)
    assert watch.lag() == 0.0
    clock.now += 25
    assert watch.lag() == pytest.approx(15.0)
    registration.heartbeats += 1  # a heartbeat went through
    assert watch.lag() == 0.0
    assert HeartbeatWatch(lambda: None, clock).lag() is None


def test_configuration_is_checked_and_names_the_bad_key() -> None:
    config = alerts_config(
        {
            "evaluate_interval_seconds": 1,
            "rules": [{"kind": "awaiting_input", "after_seconds": 30, "severity": "info"}],
            "webhooks": [{"url": "http://127.0.0.1:9/hook", "headers": {"X-Token": "t"}}],
        }
    )
    assert config.rules[0].rule_name == "awaiting_input"
    assert config.webhooks[0].headers == (("X-Token", "t"),)
    assert alerts_config({}).rules == DEFAULT_RULES
    for raw, field in (
        ({"rules": [{"kind": "nonsense"}]}, "alerts.rules[0].kind"),
        ({"rules": [{"kind": "error_rate", "threshold": 2}]}, "alerts.rules[0].threshold"),
        ({"webhooks": [{"url": "ftp://x"}]}, "alerts.webhooks[0].url"),
        ({"rules": [{"kind": "execution_failed"}] * 2}, "alerts.rules"),
        ({"rulez": []}, "alerts"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            alerts_config(raw)
        assert caught.value.violations[0].field == field


def alert(rule: str = "failed", execution_id: str = "") -> event_pb2.Event:
    event = event_pb2.Event(execution_id=execution_id)
    event.alert.rule, event.alert.kind, event.alert.message = rule, "execution_failed", "boom"
    event.alert.severity = S.ALERT_SEVERITY_WARNING
    return event


async def test_the_operator_stream_is_stored_resumable_and_followed(tmp_path: Path) -> None:
    log = AlertLog(tmp_path / "alerts.sqlite", keep=100)
    await log.open()
    await log.append(alert("one"))
    stream = log.watch(0, follow=True)
    first = await stream.__anext__()
    assert [event_pb2.Event.FromString(d).alert.rule for d in first] == ["one"]
    await log.append(alert("two"))
    live = await stream.__anext__()
    assert event_pb2.Event.FromString(live[0]).seq == 2
    await stream.aclose()
    await log.close()

    reopened = AlertLog(tmp_path / "alerts.sqlite", keep=100)
    await reopened.open()  # seqs continue across restarts: followers resume by seq
    assert (await reopened.append(alert("three"))).seq == 3
    batches = [b async for b in reopened.watch(1, follow=False)]
    assert [event_pb2.Event.FromString(d).seq for b in batches for d in b] == [2, 3]
    empty = [b async for b in reopened.watch(3, follow=False)]
    assert empty == [[]]  # the first answer comes even when there is nothing
    beyond = [b async for b in reopened.watch(2**64 - 1, follow=False)]  # a client's uint64
    assert beyond == [[]]
    await reopened.close()


async def test_replay_pages_of_the_alert_log_are_bounded_in_bytes(tmp_path: Path) -> None:
    log = AlertLog(tmp_path / "alerts.sqlite", keep=100)
    await log.open()
    for n in range(6):
        big = alert(f"a{n}")
        big.alert.message = "m" * 100_000
        await log.append(big)
    page = await log.read(0, max_bytes=250_000)
    assert [seq for seq, _ in page] == [1, 2]
    assert [seq for seq, _ in await log.read(2, max_bytes=1000)] == [3]  # one larger: alone
    seqs = [event_pb2.Event.FromString(d).seq async for b in log.watch(0, False) for d in b]
    assert seqs == [1, 2, 3, 4, 5, 6]
    await log.close()


async def test_a_slow_follower_catches_up_from_the_store() -> None:
    log = AlertLog(None, keep=1000, follower_queue=2)
    await log.open()
    stream = log.watch(0, follow=True)
    assert await stream.__anext__() == []
    for n in range(10):  # overflows the follower's queue of 2
        await log.append(alert(f"a{n}"))
    seqs: list[int] = []
    while len(seqs) < 10:
        seqs += [event_pb2.Event.FromString(d).seq for d in await stream.__anext__()]
    assert seqs == list(range(1, 11))
    await stream.aclose()
    await log.close()


class Receiver:
    """Answers scripted statuses instead of posting (the loopback test posts for real)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []
        self.pauses: list[float] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        self.bodies.append(json.loads(body))
        return self.answers.pop(0)

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


async def deliver(hook: Webhook, receiver: Receiver, event: event_pb2.Event) -> WebhookSender:
    outcomes: list[str] = []
    sender = WebhookSender(
        hook, post=receiver.post, sleep=receiver.sleep, rand=lambda: 1.0, on_outcome=outcomes.append
    )
    sender.offer(event)
    name, body = sender._queue.popleft()
    await sender._deliver(name, body)
    return sender


async def test_webhook_retries_with_backoff_until_taken() -> None:
    receiver = Receiver(Answer(500), Answer(0, problem="refused"), Answer(204))
    hook = Webhook("http://hook", backoff_seconds=1.0, max_backoff_seconds=3.0)
    sender = await deliver(hook, receiver, alert(execution_id="e9"))
    assert sender.delivered == 1 and receiver.pauses == [1.0, 2.0]
    assert receiver.bodies[0]["execution_id"] == "e9" and receiver.bodies[0]["rule"] == "failed"
    assert receiver.bodies[0]["text"].startswith("[WARNING] failed (firing)")


async def test_webhook_gives_up_on_refusal_and_honours_retry_after() -> None:
    refused = await deliver(Webhook("http://hook"), Receiver(Answer(400)), alert())
    assert refused.given_up == 1
    receiver = Receiver(Answer(429, retry_after=7.0), Answer(200))
    await deliver(Webhook("http://hook", max_backoff_seconds=60), receiver, alert())
    assert receiver.pauses == [7.0]
    exhausted = Receiver(*(Answer(503) for _ in range(3)))
    sender = await deliver(Webhook("http://hook", max_attempts=3), exhausted, alert())
    assert sender.given_up == 1 and len(exhausted.bodies) == 3


def test_webhooks_only_get_the_rules_they_ask_for() -> None:
    sender = WebhookSender(Webhook("http://hook", rules=("failed",)))
    sender.offer(alert("other"))
    sender.offer(alert("failed"))
    assert sender.pending == 1
    assert alert_payload(alert("failed"))["state"] == "firing"
