"""The flows this node offers, from its configuration (the example flows by default)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import jsonschema

from kodosumi.errors import InvalidArgument, NotFound
from kodosumi.schema import check_schema
from kodosumid.config import FlowEntry, flows_from

log = logging.getLogger(__name__)


def example_flows() -> tuple[FlowEntry, ...]:
    """The examples shipped in `flows/` (the default catalog)."""
    try:
        from flows.catalog import EXAMPLES
    except ImportError:
        log.warning("the example flows are not importable; the catalog is empty")
        return ()
    return flows_from([dict(e) for e in EXAMPLES])


def entrypoint_flow(entrypoint: str) -> FlowEntry:
    """An ad-hoc catalog entry for `kodosumid --flow ENTRYPOINT`: its inputs, description
    (and for a YAML spec tags and timeout) come from the flow itself when it is checked."""
    stem = entrypoint.rstrip("/").rsplit("/", 1)[-1]
    name = stem.rsplit(".", 1)[0] if stem.endswith((".yaml", ".yml")) else stem.replace(":", ".")
    return FlowEntry(name=name, entrypoint=entrypoint, given=frozenset({"name", "entrypoint"}))


def same_entrypoint_key(entrypoint: str) -> str:
    """`pkg.mod:Attr` and `pkg.mod.Attr` name the same object; spec files by resolved path."""
    if entrypoint.endswith((".yaml", ".yml")):
        return str(Path(entrypoint).expanduser().resolve())
    return entrypoint.replace(":", ".")


class Catalog:
    def __init__(self, flows: Iterable[FlowEntry]) -> None:
        self._flows: dict[str, FlowEntry] = {}
        for flow in flows:
            try:
                check_schema(flow.input_schema)
            except jsonschema.SchemaError as e:
                raise InvalidArgument.field(
                    f"flows.{flow.name}.input_schema", f"not a valid JSON Schema: {e.message}"
                ) from None
            self._flows[flow.name] = flow

    def get(self, name: str) -> FlowEntry:
        if not name:
            raise InvalidArgument.field("flow", "required")
        flow = self._flows.get(name)
        if flow is None:
            raise NotFound(f"no flow named {name!r} on this node", reason="FLOW_NOT_FOUND")
        return flow

    def replace_all(self, flows: Iterable[FlowEntry]) -> None:
        """Swap in re-checked entries (`--reload`); flows keep their names."""
        fresh = Catalog(flows)._flows
        self._flows.update(fresh)

    def unavailable(self) -> list[FlowEntry]:
        return [f for f in self._flows.values() if f.unavailable]

    def list(self, tag: str = "") -> list[FlowEntry]:
        return [f for f in self._flows.values() if not tag or tag in f.tags]

    def __len__(self) -> int:
        return len(self._flows)
