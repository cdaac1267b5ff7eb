"""Alerts to HTTP webhooks: one JSON POST per alert, retried with backoff until the receiver
takes it (2xx) or the attempts are used up.

Each webhook has its own queue and worker, so a receiver that is down delays only its own
deliveries, in order; beyond the queue's size the oldest waiting alert is dropped (and
logged). A 4xx answer other than 408 (timeout) and 429 (too many requests) means the
receiver refuses this alert: it is not sent again. `Retry-After` (seconds) is honoured up to
the maximum backoff. Posting runs in a thread (`urllib`), keeping the event loop free.

The body is the alert as flat JSON plus a `text` line, which chat tools that accept
incoming webhooks (`{"text": ...}`) display as is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kodosumi import __version__
from kodosumi.v1 import event_pb2
from kodosumid.observability.rules import Webhook

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})


def alert_payload(event: event_pb2.Event) -> dict[str, Any]:
    """The JSON a webhook receives for one alert event."""
    alert = event.alert
    severity = event_pb2.AlertSeverity.Name(alert.severity).removeprefix("ALERT_SEVERITY_")
    state = "resolved" if alert.resolved else "firing"
    return {
        "seq": event.seq,
        "time_unix_nano": event.time_unix_nano,
        "rule": alert.rule,
        "kind": alert.kind,
        "severity": severity.lower(),
        "state": state,
        "message": alert.message,
        "node_id": alert.node_id,
        "subject_node_id": alert.subject_node_id,
        "flow": alert.flow,
        "execution_id": event.execution_id,
        "trace_id": event.trace_id,
        "labels": dict(alert.labels),
        "text": f"[{severity}] {alert.rule} ({state}) on {alert.node_id}: {alert.message}",
    }


@dataclass(frozen=True, slots=True)
class Answer:
    """What one POST came back with: an HTTP status (0: no answer) and a Retry-After."""

    status: int
    retry_after: float | None = None
    problem: str = ""


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """One blocking POST (run it in a thread)."""
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", f"kodosumid/{__version__}")
    for key, value in headers.items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(int(response.status))
    except urllib.error.HTTPError as e:
        return Answer(e.code, _retry_after(e.headers.get("Retry-After")), f"HTTP {e.code}")
    except (OSError, ValueError) as e:
        return Answer(0, None, str(getattr(e, "reason", e)))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


Post = Callable[[str, bytes, dict[str, str], float], Answer]


class WebhookSender:
    def __init__(
        self,
        hook: Webhook,
        *,
        queue_size: int = 1000,
        post: Post = post_json,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        on_outcome: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.hook = hook
        self.post = post
        self.sleep = sleep
        self.rand = rand
        self.on_outcome = on_outcome
        self._queue: deque[tuple[str, bytes]] = deque(maxlen=queue_size)
        self._ready = asyncio.Event()
        self.delivered = 0
        self.given_up = 0
        self.dropped = 0

    def offer(self, event: event_pb2.Event) -> None:
        """Queue an alert for delivery (never blocks; drops the oldest when full)."""
        if not self.hook.wants(event.alert.rule):
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            self.on_outcome("dropped")
            log.warning("webhook %s: queue full, dropping the oldest alert", self.hook.url)
        body = json.dumps(alert_payload(event), ensure_ascii=False).encode()
        self._queue.append((f"{event.alert.rule}#{event.seq}", body))
        self._ready.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            name, body = self._queue.popleft()
            await self._deliver(name, body)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.hook.max_backoff_seconds, self.hook.backoff_seconds * 2.0**attempt)
        if retry_after is not None:
            return min(self.hook.max_backoff_seconds, retry_after)
        jitter: float = self.rand()  # spread: receivers that come back are not stampeded
        return ceiling / 2 + jitter * ceiling / 2

    async def _deliver(self, name: str, body: bytes) -> None:
        hook = self.hook
        headers = dict(hook.headers)
        answer = Answer(0)
        for attempt in range(hook.max_attempts):
            answer = await asyncio.to_thread(
                self.post, hook.url, body, headers, hook.timeout_seconds
            )
            if 200 <= answer.status < 300:
                self.delivered += 1
                self.on_outcome("delivered")
                return
            permanent = 400 <= answer.status < 500 and answer.status not in RETRYABLE_CLIENT_ERRORS
            if permanent:
                break
            if attempt + 1 < hook.max_attempts:
                delay = self._delay(attempt, answer.retry_after)
                log.info(
                    "webhook %s: alert %s not taken (%s); attempt %d in %.1f s",
                    hook.url,
                    name,
                    answer.problem or f"HTTP {answer.status}",
                    attempt + 2,
                    delay,
                )
                await self.sleep(delay)
        self.given_up += 1
        self.on_outcome("failed")
        log.warning(
            "webhook %s: gave up on alert %s: %s",
            hook.url,
            name,
            answer.problem or f"HTTP {answer.status}",
        )
