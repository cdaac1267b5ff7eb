"""Where a flow's executors may run: checking a placement (from the catalog or a launch) and
merging a launch's override into its flow's.

A placement names Ray resources (`{ GPU = 1 }`, custom ones like `{ big_memory = 1 }`),
node labels (`{ gpu = "a100" }`, set with `ray start --labels`) and/or one Ray node (its id
or address). The Ray pool turns it into actor options (`ray_placement.py`); executions with
different placements never share an executor.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from kodosumi.errors import InvalidArgument
from kodosumid.executors.port import ANYWHERE, Placement

MAX_ENTRIES = 16
MAX_AMOUNT = 1_000_000.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:/-]{0,63}$")
_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\[\]-]{0,127}$")


def _shown(value: object) -> str:
    """A value in an error message, bounded (never echo unbounded input)."""
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "…"


def parse_placement(
    resources: Any = None, labels: Any = None, node: Any = "", *, where: str = "placement"
) -> Placement:
    """A checked `Placement`; a bad value is INVALID_ARGUMENT naming its field."""
    resources = {} if resources is None else resources
    labels = {} if labels is None else labels
    if not isinstance(resources, Mapping):
        raise InvalidArgument.field(f"{where}.resources", "a table of resource name -> amount")
    if not isinstance(labels, Mapping):
        raise InvalidArgument.field(f"{where}.labels", "a table of label -> value")
    if len(resources) > MAX_ENTRIES or len(labels) > MAX_ENTRIES:
        raise InvalidArgument.field(where, f"at most {MAX_ENTRIES} resources and labels each")
    checked: dict[str, float] = {}
    for name, amount in resources.items():
        field = f"{where}.resources[{_shown(name)}]"
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidArgument.field(field, "a resource name (letters, digits, _.:/-)")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise InvalidArgument.field(field, "a number")
        if not math.isfinite(amount) or not 0 < amount <= MAX_AMOUNT:
            raise InvalidArgument.field(field, f"more than 0 and at most {MAX_AMOUNT:g}")
        checked[name] = float(amount)
    wanted: dict[str, str] = {}
    for key, value in labels.items():
        field = f"{where}.labels[{_shown(key)}]"
        if not isinstance(key, str) or not _NAME.match(key):
            raise InvalidArgument.field(field, "a label name (letters, digits, _.:/-)")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise InvalidArgument.field(field, "a label value (up to 63 letters, digits, _.:/-)")
        wanted[key] = value
    if not isinstance(node, str) or (node and not _NODE.match(node)):
        raise InvalidArgument.field(f"{where}.node", "a Ray node id or address")
    if not (checked or wanted or node):
        return ANYWHERE
    return Placement(resources=checked, labels=wanted, node=node)


def merged(flow: Placement, launch: Placement) -> Placement:
    """A launch's placement over its flow's: its resources and labels win key by key, its
    node replaces the flow's."""
    if launch.anywhere:
        return flow
    return Placement(
        resources={**flow.resources, **launch.resources},
        labels={**flow.labels, **launch.labels},
        node=launch.node or flow.node,
    )


def placement_json(placement: Placement) -> str:
    """A launch's placement as stored with its execution ('' for none)."""
    if placement.anywhere:
        return ""
    value = {
        "resources": dict(placement.resources),
        "labels": dict(placement.labels),
        "node": placement.node,
    }
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def stored_placement(text: str) -> Placement:
    """The placement `placement_json` stored. It was checked at launch; a row this node
    cannot read (edited by hand) is INVALID_ARGUMENT naming it, never a crash."""
    if not text:
        return ANYWHERE
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidArgument.field("stored placement", "not JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument.field("stored placement", "a JSON object")
    return parse_placement(
        value.get("resources"), value.get("labels"), value.get("node", ""), where="placement"
    )
