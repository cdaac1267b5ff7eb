"""What the FLOW argument of `run` names: a catalog entry by name, or an entrypoint.

An entrypoint is `module:attr`, a dotted path (`flows.serviceplan.Search`) or a YAML crew
spec file (`./assets/search.yaml`); a bare word is only ever a catalog name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kodosumi.v1 import flow_pb2

_SPEC_SUFFIXES = (".yaml", ".yml")


def looks_like_entrypoint(ref: str) -> bool:
    return (
        ":" in ref
        or "/" in ref
        or ref.endswith(_SPEC_SUFFIXES)
        or ("." in ref and not ref.startswith(".") and not ref.endswith("."))
    )


def _same_file(a: str, b: str, cwd: Path) -> bool:
    if not (a.endswith(_SPEC_SUFFIXES) and b.endswith(_SPEC_SUFFIXES)):
        return False
    return (cwd / a).resolve() == (cwd / b).resolve()


def match_flow(
    flows: Iterable[flow_pb2.Flow], ref: str, cwd: Path | None = None
) -> flow_pb2.Flow | None:
    """The flow `ref` names: by name first, then by entrypoint (spec files by their path)."""
    catalog = list(flows)
    for flow in catalog:
        if flow.name == ref:
            return flow
    for flow in catalog:
        # `package.module.Attr` and `package.module:Attr` name the same object.
        if flow.entrypoint.replace(":", ".") == ref.replace(":", "."):
            return flow
    here = cwd if cwd is not None else Path.cwd()
    for flow in catalog:
        if flow.entrypoint and _same_file(flow.entrypoint, ref, here):
            return flow
    return None
