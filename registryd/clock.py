"""Time for the registry: a `Clock` is injected so that liveness is tested without sleeping.

The clock types are shared with the node (`kodosumi/clock.py`).
"""

from __future__ import annotations

from kodosumi.clock import Clock, ManualClock, SystemClock

__all__ = ["Clock", "ManualClock", "SystemClock"]
