"""`kodosumid --flow ENTRYPOINT` and the placement flags that follow it.

    kodosumid --flow lanflows.where:whereami --flow-labels host=h3 --flow-resources GPU=1

`--flow-labels`, `--flow-resources` and `--flow-node` say where the executors of the
`--flow` just before them run, as `labels`, `resources` and `node` do in a `[[flows]]` table
of the TOML (Ray's own `ray start --labels key=value,...` form). They are checked like the
TOML's; one given before any `--flow` is a usage error naming it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kodosumid.catalog import entrypoint_flow, same_entrypoint_key
from kodosumid.config import FlowEntry
from kodosumid.executors.placement import parse_placement


@dataclass
class FlowFlag:
    """One `--flow` and the placement flags given after it, as typed."""

    entrypoint: str
    labels: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    node: str = ""


def _pairs(flag: str, text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"{flag}: {item!r} is not KEY=VALUE")
        pairs.append((key.strip(), value.strip()))
    return pairs


class _FlowAction(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        flows: list[FlowFlag] = list(getattr(namespace, self.dest) or [])
        flows.append(FlowFlag(str(values)))
        setattr(namespace, self.dest, flows)


class _PlacementAction(argparse.Action):
    """Sets a part of the placement of the last `--flow` (`self.const` names the part)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        flows: list[FlowFlag] = getattr(namespace, "flow", None) or []
        flag = option_string or self.const
        if not flows:
            parser.error(f"{flag} must follow the --flow it applies to")
        last, text = flows[-1], str(values)
        try:
            if self.const == "labels":
                last.labels.update(_pairs(flag, text))
            elif self.const == "resources":
                for name, amount in _pairs(flag, text):
                    try:
                        last.resources[name] = float(amount)
                    except ValueError:
                        parser.error(f"{flag}: {name}={amount!r}: the amount is not a number")
            else:
                last.node = text
        except argparse.ArgumentTypeError as e:
            parser.error(str(e))


def add_flow_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--flow",
        action=_FlowAction,
        default=[],
        metavar="ENTRYPOINT",
        help="add an ad-hoc flow (module:attr, dotted path or YAML file); repeatable",
    )
    parser.add_argument(
        "--flow-labels",
        action=_PlacementAction,
        const="labels",
        metavar="KEY=VALUE[,...]",
        help="Ray node labels the executors of the --flow before it need (ray start --labels)",
    )
    parser.add_argument(
        "--flow-resources",
        action=_PlacementAction,
        const="resources",
        metavar="NAME=AMOUNT[,...]",
        help="Ray resources the executors of the --flow before it need (CPU, GPU, custom)",
    )
    parser.add_argument(
        "--flow-node",
        action=_PlacementAction,
        const="node",
        metavar="NODE",
        help="the one Ray node (id, address or host name) the --flow before it runs on",
    )


def flow_entry(flag: FlowFlag) -> FlowEntry:
    """The catalog entry of one `--flow` with its placement (INVALID_ARGUMENT naming the
    flag for a bad value)."""
    entrypoint = flag.entrypoint
    if entrypoint.endswith((".yaml", ".yml")):
        entrypoint = str(Path(entrypoint).expanduser().resolve())
    entry = entrypoint_flow(entrypoint)
    placement = parse_placement(
        flag.resources, flag.labels, flag.node, where=f"--flow {flag.entrypoint}"
    )
    return replace(entry, placement=placement)


def with_flow_flags(base: Sequence[FlowEntry], flags: Sequence[FlowFlag]) -> tuple[FlowEntry, ...]:
    """The catalog `base` plus the `--flow`s. An entrypoint the catalog already offers keeps
    its catalog entry (schema, defaults), with the placement the flags give, if any."""
    flows = list(base)
    for flag in flags:
        extra = flow_entry(flag)
        key = same_entrypoint_key(extra.entrypoint)
        known = next(
            (
                i
                for i, f in enumerate(flows)
                if f.name == extra.name or same_entrypoint_key(f.entrypoint) == key
            ),
            None,
        )
        if known is None:
            flows.append(extra)
        elif not extra.placement.anywhere:
            flows[known] = replace(flows[known], placement=extra.placement)
    return tuple(flows)
