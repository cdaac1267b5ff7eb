"""Resolve a flow entrypoint: `module:attr`, a dotted path `package.module.Attr`, or a YAML file."""

from __future__ import annotations

import difflib
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

YAML_SUFFIXES = (".yaml", ".yml")


class EntrypointError(ImportError):
    """The entrypoint cannot be found or imported; the message says which part failed."""


@dataclass(frozen=True, slots=True)
class YamlSpecFile:
    """A YAML crew spec; the CrewAI adapter builds the crew from it."""

    path: Path


def add_python_path(folders: tuple[str, ...]) -> None:
    for folder in folders:
        if folder and folder not in sys.path:
            sys.path.insert(0, folder)


def load(entrypoint: str) -> Any:
    text = entrypoint.strip()
    if not text:
        raise EntrypointError("empty entrypoint")
    if text.endswith(YAML_SUFFIXES):
        path = Path(text).expanduser()
        if not path.is_file():
            raise EntrypointError(f"YAML crew spec not found: {path}")
        return YamlSpecFile(path.resolve())
    if ":" in text:
        module_name, _, attr_path = text.partition(":")
        module = _import(module_name)
        return _walk(module, attr_path.split("."), text)
    parts = text.split(".")
    # The longest importable prefix is the module; the rest are attributes.
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and not module_name.startswith(e.name) and e.name != module_name:
                raise EntrypointError(f"importing {module_name} failed: {e}") from e
            continue
        return _walk(module, parts[cut:], text)
    raise EntrypointError(f"no importable module in entrypoint {text!r}")


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise EntrypointError(f"module {module_name!r} not found: {e}") from e


def _walk(obj: Any, attrs: list[str], entrypoint: str) -> Any:
    for attr in attrs:
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(attr, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise EntrypointError(f"{entrypoint!r}: no attribute {attr!r}{hint}") from None
    return obj
