"""The one TOML/environment configuration loader of the daemons: typed, frozen dataclasses
filled from a TOML file, then from environment variables, then from flags.

A configuration is a dataclass whose fields are `bool`, `int`, `float`, `str`, `Path`,
`tuple[str, ...]`, optionals of those, or nested dataclasses (TOML tables). Keys map to
`<PREFIX><KEY>` variables, keys of a table to `<PREFIX><TABLE>_<KEY>`; relative paths in a
file are relative to the file's folder. Every error is a `ConfigError` that names where the
bad value came from: `node.toml:12: lease.ttl_factor: not a number: 'lots'`, or the variable.

    config = load(RegistryConfig, path, env=os.environ, prefix="KODOSUMI_REGISTRY_")
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

_C = TypeVar("_C")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file and line, or the key."""


@dataclass(frozen=True, slots=True)
class TomlFile:
    """A parsed TOML file and its text, to name the line of a bad key."""

    path: Path
    text: str
    data: dict[str, Any]

    def line_of(self, table: tuple[str, ...], key: str | None = None) -> int | None:
        """The line of `key` in `[table]` (or of the table's header), 1-based; None when
        the key is written in a form this simple scan does not follow (inline tables)."""
        current: tuple[str, ...] = ()
        header_line: int | None = None if table else 1
        for number, raw in enumerate(self.text.splitlines(), 1):
            line = raw.strip()
            if line.startswith("["):
                name = line.strip("[]").split("#")[0].strip().strip("[]")
                current = tuple(part.strip().strip('"') for part in name.split("."))
                if current == table:
                    header_line = number
                    if key is None:
                        return number
                continue
            if key is not None and current == table:
                name = line.split("=", 1)[0].strip().strip('"')
                if "=" in line and name == key:
                    return number
        return header_line

    def line_of_item(self, array: str, index: int, path: tuple[str, ...]) -> int | None:
        """The line of `path` (keys and sub-tables, deepest found) inside the `index`-th
        `[[array]]` entry: `flows[2].price.per_run` is (`flows`, 2, (`price`, `per_run`))."""
        seen, found, depth = -1, None, -1
        sub: tuple[str, ...] = ()
        for number, raw in enumerate(self.text.splitlines(), 1):
            line = raw.strip()
            if line.startswith("[["):
                if line.split("#")[0].strip().strip("[]").strip() != array:
                    if seen == index:
                        break
                    continue
                seen += 1
                if seen > index:
                    break
                if seen == index:
                    found, depth, sub = number, 0, ()
                continue
            if seen != index:
                continue
            if line.startswith("["):
                name = line.split("#")[0].strip().strip("[]")
                parts = tuple(part.strip().strip('"') for part in name.split("."))
                if parts[0] != array:
                    break  # another table: the entry ended
                sub = parts[1:]
                if sub == path[: len(sub)] and len(sub) > depth:
                    found, depth = number, len(sub)
                continue
            if "=" in line:
                key = line.split("=", 1)[0].strip().strip('"')
                keys = (*sub, key)
                if keys == path[: len(keys)] and len(keys) > depth:
                    found, depth = number, len(keys)
        return found

    def where(self, table: tuple[str, ...], key: str | None = None) -> str:
        line = self.line_of(table, key)
        return f"{self.path}:{line}" if line is not None else str(self.path)


def read_toml(path: Path) -> TomlFile:
    """Parse `path`; a syntax error names the file, line and column."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = _AT.search(message)
        brief = _AT.sub("", message).strip()
        if found is not None:
            raise ConfigError(f"{path}:{found[1]}:{found[2]}: {brief}") from None
        if "end of document" in message:  # tomllib names no line there: it is the last
            last = max(1, len(text.splitlines()))
            raise ConfigError(f"{path}:{last}: {message}") from None
        raise ConfigError(f"{path}: {message}") from None
    return TomlFile(path, text, data)


def coerce(kind: Any, value: Any, where: str, base: Path | None = None) -> Any:
    """`value` (from TOML or an environment variable) as the field type `kind`."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value in (None, "") else coerce(inner[0], value, where, base)
    if typing.get_origin(kind) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{where}: expected a list, not {value!r}")
        stripped = [item.strip() if isinstance(item, str) else item for item in items]
        return tuple(coerce(str, item, where, base) for item in stripped if item != "")
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _TRUE:
                return True
            if isinstance(value, str) and value.lower() in _FALSE:
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind is int:
            if isinstance(value, (bool, float)):
                raise ValueError
            return _number(int, value, "an integer")
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return _number(float, value, "a number")
        if kind is str:
            if not isinstance(value, str):
                raise ValueError(f"not a string: {value!r}")
            return value
        if kind is Path:
            p = Path(str(value)).expanduser()
            return base / p if base is not None and not p.is_absolute() else p
    except (TypeError, ValueError) as e:
        if not str(e):  # a bool or float where an integer belongs
            e = ValueError(f"not {'an integer' if kind is int else 'a number'}: {value!r}")
        raise ConfigError(f"{where}: {e}") from None
    raise ConfigError(f"{where}: unsupported type {kind}")


def _number(kind: type[int] | type[float], value: Any, what: str) -> int | float:
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"not {what}: {value!r}") from None


def table(
    cls: type[Any],
    data: Mapping[str, Any],
    *,
    base: Path | None = None,
    file: TomlFile | None = None,
    path: tuple[str, ...] = (),
    label: str = "",
) -> dict[str, Any]:
    """The values of one TOML table for dataclass `cls`, checked and coerced (nested
    tables too). `path` is where the table sits in the file; `label` prefixes key names
    in messages when the table is not read from a file."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = ".".join((label, *path, key) if label else (*path, key))
        where = f"{file.where(path, key)}: {dotted}" if file is not None else dotted
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}: unknown key {key!r} (known: {known})")
        kind = hints[key]
        entry = _named_tables(kind)
        if entry is not None:
            # `[section.levels.gold]`: a table of named tables, each one dataclass.
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table")
            named: dict[str, Any] = {}
            for name, sub in value.items():
                inner = (*path, key, name)
                if not isinstance(sub, Mapping):
                    raise ConfigError(f"{where}.{name}: [{'.'.join(inner)}] must be a table")
                values = table(entry, sub, base=base, file=file, path=inner, label=label)
                named[name] = build(entry, values)
            out[key] = named
        elif dataclasses.is_dataclass(kind):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table")
            out[key] = table(
                kind,  # type: ignore[arg-type]
                value,
                base=base,
                file=file,
                path=(*path, key),
                label=label,
            )
        else:
            out[key] = coerce(kind, value, where, base)
    return out


def _named_tables(kind: Any) -> type[Any] | None:
    """The dataclass of a `dict[str, <dataclass>]` field, else None."""
    if typing.get_origin(kind) is dict:
        value = typing.get_args(kind)[1]
        if dataclasses.is_dataclass(value):
            return value  # type: ignore[return-value]
    return None


def env_values(cls: type[Any], env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The values `<prefix><KEY>` (and `<prefix><TABLE>_<KEY>`) variables give `cls`."""
    out: dict[str, Any] = {}
    for key, kind in typing.get_type_hints(cls).items():
        name = f"{prefix}{key.upper()}"
        if dataclasses.is_dataclass(kind):
            section = env_values(kind, env, f"{name}_")  # type: ignore[arg-type]
            if section:
                out[key] = section
        elif name in env:
            out[key] = coerce(kind, env[name], name)
    return out


def merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Values of `other` over `into`, table by table."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def build(cls: type[_C], values: Mapping[str, Any]) -> _C:
    """`cls` from checked values; fields not given keep their defaults."""
    hints = typing.get_type_hints(cls)
    kwargs = {
        key: build(hints[key], value) if dataclasses.is_dataclass(hints[key]) else value
        for key, value in values.items()
    }
    return cls(**kwargs)


def load(
    cls: type[_C],
    path: Path | None,
    *,
    env: Mapping[str, str],
    prefix: str,
    overrides: Mapping[str, Any] | None = None,
) -> _C:
    """Defaults, then the TOML file, then `<prefix>*` variables, then `overrides` (flags;
    None skips one; `table__key` reaches into a table)."""
    values: dict[str, Any] = {}
    if path is not None:
        file = read_toml(path)
        values = table(cls, file.data, base=path.parent, file=file)
    merge(values, env_values(cls, env, prefix))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, name = key.rpartition("__")
        (values.setdefault(section, {}) if section else values)[name] = value
    return build(cls, values)
