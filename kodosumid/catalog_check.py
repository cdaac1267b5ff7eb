"""Catalog entries checked before anyone launches them, and filled in from the flows.

The node never imports a flow (nor the engine; tests/node/test_node_imports.py): it runs
`python -m engine.catalog_check` as a short-lived process that imports every entrypoint as
an executor would, and reads back per flow its errors, the input schema its signature
declares, its docstring and the source files it imported. A flow with errors stays listed
but `unavailable` (with the errors: `koco flows`, GetNodeInfo, the registry); launching it
is FAILED_PRECONDITION. A YAML crew spec's own inputs, description, tags and timeout are
read here without the engine (`kodosumi.crew_spec_meta`). What the catalog writes out
explicitly (`FlowEntry.given`) always wins over what a flow declares.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kodosumi.crew_spec_meta import SpecMetadataError, catalog_entry
from kodosumi.errors import FailedPrecondition
from kodosumi.flow_check import CHECK_TIMEOUT_SECONDS, CheckFailed, FlowCheck, run_check
from kodosumid.config import FlowEntry, NodeConfig

log = logging.getLogger(__name__)

DEFAULT_SCHEMA: dict[str, Any] = {"type": "object"}
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class CatalogCheck:
    flows: tuple[FlowEntry, ...]
    # Per flow: the source files it imported (what `--reload` watches), and every error.
    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    errors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Set when the check itself could not run (the flows are then listed unchecked).
    failure: str = ""

    @property
    def broken(self) -> list[FlowEntry]:
        return [f for f in self.flows if f.unavailable]


def fill(flow: FlowEntry, found: Mapping[str, Any]) -> FlowEntry:
    """The entry with what the flow declares where the catalog says nothing."""
    changes: dict[str, Any] = {}
    for key in ("description", "version"):
        if key not in flow.given and not getattr(flow, key) and found.get(key):
            changes[key] = str(found[key])
    if "tags" not in flow.given and not flow.tags and found.get("tags"):
        changes["tags"] = tuple(str(t) for t in found["tags"])
    timeout = found.get("timeout_seconds")
    if "timeout_seconds" not in flow.given and not flow.timeout_seconds and timeout:
        changes["timeout_seconds"] = float(timeout)
    schema = found.get("input_schema")
    if "input_schema" not in flow.given and flow.input_schema == DEFAULT_SCHEMA and schema:
        changes["input_schema"] = schema
    return replace(flow, **changes) if changes else flow


def with_spec_metadata(flow: FlowEntry) -> FlowEntry:
    """A YAML crew spec's inputs, description, tags, version and timeout (no engine)."""
    if not flow.entrypoint.strip().endswith(YAML_SUFFIXES):
        return flow
    try:
        return fill(flow, catalog_entry(flow.entrypoint.strip()))
    except SpecMetadataError as e:
        return replace(flow, unavailable=str(e))


def checked(flow: FlowEntry, check: FlowCheck | None) -> FlowEntry:
    if check is None:
        return flow
    flow = fill(flow, {"input_schema": check.input_schema, "description": check.description})
    if check.errors:
        return replace(flow, unavailable="; ".join(check.errors))
    return flow


async def check_catalog(
    flows: Iterable[FlowEntry],
    python_path: Sequence[str],
    limit_seconds: float = CHECK_TIMEOUT_SECONDS,
) -> CatalogCheck:
    """Every entry checked and filled in; a check that cannot run leaves them unchecked."""
    entries = tuple(with_spec_metadata(f) for f in flows)
    pairs = [(f.name, f.entrypoint) for f in entries]
    try:
        results = await run_check(pairs, python_path, limit_seconds)
    except CheckFailed as e:
        # One module may take the whole check down (os._exit at import, a crash in a C
        # extension): check each flow alone, so that only that one is marked.
        log.warning("catalog check failed (%s); checking each flow alone", e)
        results = await _one_by_one(pairs, python_path, limit_seconds)
        if pairs and not results:
            log.warning("catalog not checked, flows listed as configured: %s", e)
            return CatalogCheck(entries, failure=str(e))
    final = []
    errors: dict[str, tuple[str, ...]] = {}
    for flow in entries:
        result = results.get(flow.name)
        if result is not None and flow.unavailable and not result.errors:
            result = replace(result, errors=(flow.unavailable,))
        final.append(checked(flow, result))
        if result is not None and result.errors:
            errors[flow.name] = result.errors
            log.warning("flow %s is unavailable: %s", flow.name, "; ".join(result.errors))
    files = {n: r.files for n, r in results.items()}
    return CatalogCheck(tuple(final), files, errors)


async def _one_by_one(
    pairs: Sequence[tuple[str, str]], python_path: Sequence[str], limit_seconds: float
) -> dict[str, FlowCheck]:
    """Each flow in a process of its own; empty when not one check could run (then the
    check itself is broken, not the flows)."""
    results: dict[str, FlowCheck] = {}
    failed: dict[str, FlowCheck] = {}
    for name, entrypoint in pairs:
        try:
            results.update(await run_check([(name, entrypoint)], python_path, limit_seconds))
        except CheckFailed as e:
            failed[name] = FlowCheck(errors=(f"{entrypoint}: checking it failed: {e}",))
    return {**results, **failed} if results else {}


async def node_catalog(flows: Sequence[FlowEntry], config: NodeConfig) -> CatalogCheck:
    """The catalog a node starts with: checked and filled in (unless `check_catalog` is
    off); with `strict`, a broken flow (or a check that cannot run) is a start-up error."""
    if not config.check_catalog:
        return CatalogCheck(tuple(with_spec_metadata(f) for f in flows))
    check = await check_catalog(flows, config.python_path)
    if config.strict and (check.broken or check.failure):
        problems = [f"{f.name}: {f.unavailable}" for f in check.broken] or [check.failure]
        raise FailedPrecondition(
            "--strict: the catalog has broken flows: " + "; ".join(problems),
            reason="CATALOG_BROKEN",
        )
    return check


def report(check: CatalogCheck) -> list[str]:
    """Lines for `kodosumid --check`: one per flow, every error of a broken one."""
    lines = []
    for flow in check.flows:
        if not flow.unavailable:
            lines.append(f"ok      {flow.name} ({flow.entrypoint})")
            continue
        lines.append(f"BROKEN  {flow.name} ({flow.entrypoint})")
        errors = check.errors.get(flow.name) or (flow.unavailable,)
        lines.extend(f"        {error}" for error in errors)
    if check.failure:
        lines.append(f"not checked: {check.failure}")
    return lines
