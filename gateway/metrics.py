"""The gateway's metrics in the Prometheus text format (`GET /metrics`): jobs by state."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.jobs import JobState

__all__ = ["prometheus_text"]


def prometheus_text(counts: Mapping[str, int]) -> str:
    lines = [
        "# HELP kodogate_jobs Jobs of the gateway by state.",
        "# TYPE kodogate_jobs gauge",
    ]
    for state in JobState:
        lines.append(f'kodogate_jobs{{state="{state}"}} {counts.get(str(state), 0)}')
    return "\n".join(lines) + "\n"
