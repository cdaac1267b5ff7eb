"""The cards this node shows: the settings they are made from (node id, the address clients
dial, trust domain), the key and certificate that sign them, and the public card that HTTP
discovery serves (flows open to everyone)."""

from __future__ import annotations

from collections.abc import Callable

from a2a.types import a2a_pb2

from kodosumid.a2a.cards import CardSettings, flow_card, node_card, signed
from kodosumid.auth.identity import NodeCredentials
from kodosumid.catalog import Catalog


class NodeCards:
    def __init__(
        self,
        node_id: str,
        address: Callable[[], str],
        credentials: NodeCredentials | None,
        catalog: Catalog,
    ) -> None:
        self._node_id = node_id
        # Called per card: the advertised address is known only once the port is bound.
        self._address = address
        self._credentials = credentials
        self._catalog = catalog

    def settings(self) -> CardSettings:
        creds = self._credentials
        trust_domain = creds.trust_domain if creds is not None else ""
        return CardSettings(self._node_id, self._address(), trust_domain)

    def signing_material(self) -> tuple[bytes, bytes] | None:
        """The node's current key and certificate (read again: enrolled ones are renewed)."""
        files = self._credentials.files if self._credentials is not None else None
        if files is None:
            return None
        return files.key.read_bytes(), files.cert.read_bytes()

    def public_card(self, flow: str = "") -> a2a_pb2.AgentCard | None:
        """The card anyone may read (HTTP discovery): flows open to everyone, or one of them."""
        open_flows = [f for f in self._catalog.list() if not f.groups]
        if not flow:
            return signed(node_card(self.settings(), open_flows), self.signing_material)
        chosen = [f for f in open_flows if f.name == flow]
        if not chosen:
            return None
        return signed(flow_card(self.settings(), chosen[0]), self.signing_material)
