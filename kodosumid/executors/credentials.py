"""What an executor dials its node with for `ctx.call_flow`, handed over as data.

Executors may run on any host of the Ray cluster, where the node's files do not exist. So
the node reads the credentials (the flow's own identity, issued by the auth provider, else
the node's certificate) and sends the bytes with every start of an execution: an executor
always dials with what is current (renewed certificates included), and nothing secret is
kept in an actor's creation arguments (Ray keeps those in its GCS).
"""

from __future__ import annotations

from pathlib import Path

from kodosumi.tls import TlsFiles

# (ca, cert, key) PEM bytes.
Credentials = tuple[bytes, bytes, bytes]


class CallerCredentials:
    """Reads credential files once per change (their modification times), not per start."""

    def __init__(self, node: TlsFiles | None, flows_dir: Path | None) -> None:
        self.node = node
        self.flows_dir = flows_dir
        self._cache: dict[tuple[Path, ...], tuple[tuple[int, ...], Credentials]] = {}

    def _read(self, files: tuple[Path, Path, Path]) -> Credentials | None:
        try:
            stamp = tuple(p.stat().st_mtime_ns for p in files)
        except OSError:
            return None
        cached = self._cache.get(files)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            ca, cert, key = (p.read_bytes() for p in files)
        except OSError:
            return None
        self._cache[files] = (stamp, (ca, cert, key))
        return ca, cert, key

    def for_flow(self, flow: str) -> Credentials | None:
        """The flow's identity when it has one, else the node's; None for an insecure node."""
        if self.flows_dir is not None and flow:
            own = self._read(
                (
                    self.flows_dir / "ca.pem",
                    self.flows_dir / f"{flow}.pem",
                    self.flows_dir / f"{flow}.key",
                )
            )
            if own is not None:
                return own
        if self.node is None:
            return None
        return self._read((self.node.ca_cert, self.node.cert, self.node.key))
