"""Typed reads of the gateway's TOML that name `file:line: key` on a mistake (config.py's
helpers: keys allowed in a table, strings, bounded numbers, amounts, sub-tables)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kodosumi.config_loader import ConfigError, TomlFile

# Masumi amounts are integers in the asset's smallest unit (lovelace); the ledger's are
# decimals with at most 9 places (docs/market.md). Both are written as strings.
_MAX_AMOUNT = Decimal(10) ** 18


class Reader:
    """Typed reads of one table that name `file:line: key` on a mistake."""

    def __init__(self, toml: TomlFile) -> None:
        self.toml = toml

    def fail(self, where: str, key: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {message}")

    def table_where(self, table: tuple[str, ...], key: str | None = None) -> str:
        return self.toml.where(table, key)

    def item_where(self, index: int, path: tuple[str, ...]) -> str:
        line = self.toml.line_of_item("services", index, path)
        return f"{self.toml.path}:{line}" if line is not None else str(self.toml.path)


def keys(data: Mapping[str, Any], allowed: set[str], raise_at: Any, name: str) -> None:
    for key in data:
        if key not in allowed:
            raise raise_at(key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def string(value: Any, fail: Any, key: str) -> str:
    if not isinstance(value, str):
        raise fail(key, "a string")
    return value


def number(value: Any, fail: Any, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise fail(key, f"a number from {low:g} to {high:g}")
    return float(value)


def amount(value: Any, fail: Any, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail(key, "an amount (a number or a decimal string)")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise fail(key, f"an amount, not {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount >= _MAX_AMOUNT:
        raise fail(key, "an amount >= 0 and below 10^18")
    if -amount.as_tuple().exponent > 9:  # type: ignore[operator]
        raise fail(key, "at most 9 decimal places")
    return amount


def table(reader: Reader, data: Mapping[str, Any], name: tuple[str, ...]) -> dict[str, Any]:
    value: Any = data
    for part in name:
        value = value.get(part, {}) if isinstance(value, dict) else None
    if not isinstance(value, dict):
        raise ConfigError(f"{reader.table_where(name)}: {'.'.join(name)}: a table")
    return value
