"""How an executor dials its node for `ctx.call_flow`: the node's address and credentials.

Built by the node once it is bound, handed to every executor as plain strings (they cross
the Ray hop), and read inside the executor by `flow_caller.GrpcFlowCaller`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallerSettings:
    """Where the node is and what to dial it with (plain strings: they cross the Ray hop)."""

    address: str
    node_id: str = ""
    # The node's credential files; all empty for an --insecure node.
    ca_cert: str = ""
    cert: str = ""
    key: str = ""
    # `<state>/pki/flows`: the flows' identities (`<flow>.pem`, `<flow>.key`, `ca.pem`).
    flows_dir: str = ""

    def to_dict(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}
