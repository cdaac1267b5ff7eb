"""Where an executor dials its node for `ctx.call_flow`: the node's advertised address.

Built by the node once it is bound, handed to every executor as plain strings (they cross
the Ray hop), and read inside the executor by `flow_caller.GrpcFlowCaller`. What to dial
with is not here: credentials go as data with each start (`credentials.py`), never as paths
(an executor on another host of the cluster has none of the node's files).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallerSettings:
    """Where the node is (its advertised address) and which node it is."""

    address: str
    node_id: str = ""

    def to_dict(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}
