"""Budgets: a spending cap of a user or a group per UTC calendar period and currency."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Budget:
    subject: str  # "user/alice" or "group/ml"
    currency: str
    period: str  # "day" or "month"
    limit_units: int
    set_at: float = 0.0
    set_by: str = ""


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """A budget and what counts against it in the current period: settled amounts and open
    holds of the subject (a group's: of its members) placed in that period."""

    budget: Budget
    period_key: str
    used_units: int

    @property
    def remaining_units(self) -> int:
        return max(0, self.budget.limit_units - self.used_units)


def period_key(period: str, at: float) -> str:
    """The UTC calendar period `at` falls in: `day:2026-12-05` or `month:2026-12`."""
    day = dt.datetime.fromtimestamp(at, dt.UTC)
    return f"day:{day:%Y-%m-%d}" if period == "day" else f"month:{day:%Y-%m}"
