"""What executor processes write, in the node's output: Ray forwards every line its workers
of this job write (`log_to_driver`), and this takes the place of Ray's own printer.

- stderr lines an executor logged as JSON (`engine/process_log.py`, installed by the actor)
  are logged again by the node at their level under `kodosumid.executor.<their logger>`,
  so they come out in the node's format (text or JSON) with the executor's pid and host;
- other stderr lines (a worker's own messages, a crash) are logged by `kodosumid.executor`;
- stdout lines (the console span exporter's spans, one per line) go to the node's stdout.

Nothing of it is printed by Ray itself: in JSON mode every line on the node's stderr stays
a JSON object.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from typing import Any

log = logging.getLogger("kodosumid.executor")

# Ray's name for its printer, which we replace (ray/_private/worker.py, `connect`).
_RAY_PRINTER = "ray_print_logs"
_HANDLER = "kodosumi_executor_output"
_lock = threading.Lock()
# What one forwarded line may bring: its length, its fields, the names of both.
MAX_LINE = 16_384
MAX_STDOUT_LINE = 1 << 20  # a span with long attributes is still one whole line
MAX_FIELDS = 24
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_NAME = re.compile(r"[^A-Za-z0-9_.-]")
# LogRecord attributes an `extra` must not set (logging refuses to overwrite them).
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def forward_worker_output() -> None:
    """Route Ray's forwarded worker lines through `handle` (call after `ray.init`)."""
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    dispatcher.remove_handler(_RAY_PRINTER)
    dispatcher.remove_handler(_HANDLER)
    dispatcher.add_handler(_HANDLER, handle)


def handle(data: dict[str, Any]) -> None:
    """One batch of lines of one worker (`lines`, `pid`, `ip`, `is_err`)."""
    lines = [str(line) for line in data.get("lines", ()) if str(line).strip()]
    pid = str(data.get("pid", ""))
    if not lines:
        return
    if not pid.isdigit():
        _from_ray(pid, lines)
        return
    where = {"executor_pid": pid, "executor_host": str(data.get("ip", ""))}
    if not data.get("is_err"):
        with _lock:
            for line in lines:
                sys.stdout.write(line[:MAX_STDOUT_LINE] + "\n")
            sys.stdout.flush()
        return
    for line in lines:
        _relog(line, where)


def _from_ray(source: str, lines: list[str]) -> None:
    """Lines of Ray's own processes: the autoscaler's events (its periodic status report is
    left out, as Ray does), the raylet's and GCS's warnings (a worker killed, out of memory)."""
    from ray._private import ray_constants
    from ray._private.worker import filter_autoscaler_events

    if source == "autoscaler":
        lines = list(filter_autoscaler_events(lines))
    marker = ray_constants.LOG_PREFIX_INFO_MESSAGE
    logger = logging.getLogger(f"ray.{source or 'cluster'}")
    for line in lines:
        if marker in line:
            logger.info("%s", line.split(marker, 1)[1])
        else:
            logger.log(logging.INFO if source == "autoscaler" else logging.WARNING, "%s", line)


def _relog(line: str, where: dict[str, str]) -> None:
    """Log one stderr line of an executor. Whatever the line says, it is logged as the
    executor's (a flow's code can write anything there): under `kodosumid.executor.*`,
    with the pid and host Ray reported, bounded in size and in fields."""
    if len(line) > MAX_LINE:
        line = f"{line[:MAX_LINE]}… ({len(line) - MAX_LINE} more characters)"
        record = None
    else:
        record = _parsed(line)
    if record is None:
        log.info("%s", line, extra=where)
        return
    level = logging.getLevelName(str(record.get("level", "INFO")))
    name = _NAME.sub("", str(record.get("logger") or ""))[:100]
    logger = logging.getLogger(f"{log.name}.{name}" if name else log.name)
    extra = {
        key: value
        for key, value in list(record.items())[:MAX_FIELDS]
        if _FIELD.fullmatch(key)
        and key not in ("time", "level", "logger", "exception")
        and key not in _RESERVED
        and key not in where
        and isinstance(value, str | int | float | bool)
    }
    message = str(record.get("message", ""))
    if record.get("exception"):
        message += "\n" + str(record["exception"])
    logger.log(
        level if isinstance(level, int) else logging.INFO, "%s", message, extra={**extra, **where}
    )


def _parsed(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "message" in data else None
