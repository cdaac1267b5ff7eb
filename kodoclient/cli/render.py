"""How events look on a terminal: pure functions from events to rich renderables.

`event_line` turns one event into one scrolling line (or None when the event only moves
the live view); `status_view`, `result_view` and `summary_line` draw a `FollowState` (the
SDK's `kodoclient.follow_state` folds events into it). Nothing here reads a clock, a terminal
or the network, so every kind of event is unit-testable.

The rooms: `event_lines` (one line per event, status and input-kind words), `follow_view`
(the live view, result, error and summary line) and `records` (messages as `--json` data).
This module gathers their names for the commands and tests that import them from here.
"""

from __future__ import annotations

from kodoclient.cli.event_lines import (
    RENDERERS,
    STATUS_STYLES,
    clock,
    event_line,
    input_kind_name,
    status_text,
)
from kodoclient.cli.follow_view import error_view, result_view, status_view, summary_line
from kodoclient.cli.records import record

__all__ = [
    "RENDERERS",
    "STATUS_STYLES",
    "clock",
    "error_view",
    "event_line",
    "input_kind_name",
    "record",
    "result_view",
    "status_text",
    "status_view",
    "summary_line",
]
