"""The audit trail of a daemon: every refusal and every admin action, as JSON lines.

One file per daemon, `<state>/audit/audit.jsonl` (folder 0700, files 0600), rotated by size
(`max_bytes`, `backups` old files kept). Each line says when, who (the caller's SPIFFE id,
or its network address when it has no identity), which method, the status and the reason:

    {"ts": "2026-12-04T19:50:00.123Z", "event": "refused", "who": "spiffe://d/user/bob",
     "method": "/kodosumi.v1.AuthService/Revoke", "code": "PERMISSION_DENIED",
     "reason": "PERMISSION_DENIED", "peer": "ipv4:10.0.0.7:51234"}

Refusals are what an attacker can cause at will, so their lines are rate-limited (a token
bucket, `refusals_per_second` with a burst): beyond it lines are counted, not written, and
the next written line carries `"suppressed": N`. The OTel counters
(`kodosumi.audit.refusals`, `kodosumi.audit.admin_actions`) count every event.

The guard (`kodosumi.rpc.guard`) writes refusals of UNAUTHENTICATED, PERMISSION_DENIED and
RESOURCE_EXHAUSTED and the admin actions itself; other code that refuses outside a call's
error path (a quota that ends a stream) calls `refused(principal, method, reason)`, which
goes to the audit log of the call being served.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import os
import threading
import time
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Any

from opentelemetry import metrics

from kodosumi.authz import Principal
from kodosumi.sqlite import private_dir

AUDIT_DIR = "audit"
AUDIT_FILE = "audit.jsonl"


class _PrivateRotatingFile(RotatingFileHandler):
    """A rotating file created 0600 (the log names who was refused and why)."""

    def _open(self) -> IO[Any]:  # type: ignore[override]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class AuditLog:
    def __init__(
        self,
        state_dir: Path | None,
        *,
        meter: metrics.Meter | None = None,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 5,
        refusals_per_second: float = 20.0,
        refusal_burst: float = 200.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._handler: _PrivateRotatingFile | None = None
        self.path: Path | None = None
        if state_dir is not None:
            folder = private_dir(state_dir / AUDIT_DIR)
            self.path = folder / AUDIT_FILE
            self._handler = _PrivateRotatingFile(
                self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        self._bucket = TokenBucket(refusals_per_second, refusal_burst, clock)
        self.suppressed = 0
        meter = meter or metrics.get_meter("kodosumi.audit")
        self._refusals = meter.create_counter(
            "kodosumi.audit.refusals",
            unit="{call}",
            description="Calls refused (unauthenticated, permission denied, quota)",
        )
        self._admin_actions = meter.create_counter(
            "kodosumi.audit.admin_actions",
            unit="{call}",
            description="Admin calls served",
        )

    def refused(
        self, who: str, method: str, code: str, reason: str, *, peer: str = "", detail: str = ""
    ) -> None:
        self._refusals.add(1, {"code": code, "reason": reason})
        with self._lock:
            if not self._bucket.take():
                self.suppressed += 1
                return
        self._write(
            {
                "event": "refused",
                "who": who,
                "method": method,
                "code": code,
                "reason": reason,
                "peer": peer,
                **({"detail": detail[:200]} if detail else {}),
            }
        )

    def admin(self, who: str, method: str, *, peer: str = "") -> None:
        self._admin_actions.add(1, {"method": method})
        self._write({"event": "admin", "who": who, "method": method, "peer": peer})

    def _write(self, record: dict[str, Any]) -> None:
        if self._handler is None:
            return
        stamp = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        line: dict[str, Any] = {"ts": stamp.isoformat(timespec="milliseconds"), **record}
        with self._lock:
            if self.suppressed:
                line["suppressed"] = self.suppressed
                self.suppressed = 0
            handler = self._handler
            stream: IO[Any] = handler.stream or handler._open()
            handler.stream = stream  # type: ignore[assignment]
            stream.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            stream.flush()
            if handler.maxBytes and stream.tell() >= handler.maxBytes:
                handler.doRollover()

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
            self._handler = None


# The audit log of the call being served (set by the guard), for `refused()` below.
_current: contextvars.ContextVar[AuditLog | None] = contextvars.ContextVar(
    "kodosumi_audit", default=None
)


def use(audit: AuditLog | None) -> None:
    """Make `audit` the log of the current call (the guard does this before a servicer runs)."""
    _current.set(audit)


def refused(
    principal: Principal | None,
    method: str,
    reason: str,
    *,
    code: str = "RESOURCE_EXHAUSTED",
    detail: str = "",
) -> None:
    """Record a refusal made outside the guard's error path (e.g. a quota ending a stream)."""
    audit = _current.get()
    if audit is not None:
        who = principal.id if principal is not None else "unknown"
        audit.refused(who, method, code, reason, detail=detail)
