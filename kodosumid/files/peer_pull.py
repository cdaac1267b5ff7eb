"""Input files of a launch a peer forwarded here: pulled from that peer, hashes checked.

The forwarding node let this node read the files (a grant); this node fetches each one it
does not hold yet over the peer link (mTLS, as itself), checks size and SHA-256, and stores
it as a file of the identity the launch is for (the user who launched on the forwarding
node, named by it; the forwarding node itself when it names none). That identity's file
quotas here (`[quotas] file_bytes`, `max_file_bytes`, with its roles and groups on this
node) hold the pull: a user cannot store more here through a peer than by uploading here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument, ResourceExhausted
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumid.files.blobs import is_sha256
from kodosumid.files.model import FileRecord, file_id_for

if TYPE_CHECKING:
    from kodosumid.files.service import Files


@dataclass(frozen=True, slots=True)
class RemoteFile:
    file_id: str
    name: str
    media_type: str
    size: int
    sha256: str


class PeerSource(Protocol):
    """Files of peer nodes, called as this node (`peer_link.PeerFiles`)."""

    async def stat(self, node_id: str, file_id: str) -> RemoteFile: ...

    def chunks(self, node_id: str, file_id: str) -> AsyncIterator[bytes]: ...


async def pull_inputs(
    files: Files,
    source: PeerSource,
    principal: Principal,
    node_id: str,
    refs: dict[str, str],
    forwarded_for: str = "",
) -> dict[str, FileRecord]:
    """name -> the local copy of each file (name -> the peer's file id)."""
    owner = _owner(principal, forwarded_for)
    payer = await files.payer(principal, owner)
    local: dict[str, FileRecord] = {}
    for name, remote_id in sorted(refs.items()):
        remote = await source.stat(node_id, remote_id)
        if not is_sha256(remote.sha256):
            raise InvalidArgument.field(f"files.{name}", "the peer gave no valid SHA-256")
        limit = files.config.max_file_bytes
        if limit and remote.size > limit:
            raise ResourceExhausted(
                f"files.{name}: {remote.size} bytes is over this node's limit of {limit}",
                reason="FILE_TOO_LARGE",
            )
        file_id = file_id_for(owner, remote.sha256)
        record = await files.store.get(file_id)
        if record is None:
            ticket = await files.quotas.admit_file(
                payer, remote.size, files.store.stored_bytes, field=f"files.{name}"
            )
            try:
                await _fetch(files, source, node_id, remote, name)
                now = files.clock.now_ns()
                record = await files.store.put(
                    FileRecord(
                        file_id,
                        owner,
                        remote.name,
                        remote.media_type,
                        remote.size,
                        remote.sha256,
                        now,
                        now + int(files.config.ttl_seconds * 1e9),
                    )
                )
            finally:
                ticket.release()
        local[name] = record
    return local


def _owner(principal: Principal, forwarded_for: str) -> str:
    """The identity a forwarded launch's files belong to here: the one the peer names, of
    this trust domain; the peer itself when it names none."""
    if not forwarded_for:
        return principal.id
    try:
        identity = SpiffeId.parse(forwarded_for)
    except InvalidSpiffeId:
        raise InvalidArgument.field("forwarded_for", "a SPIFFE id") from None
    if principal.identity is not None and identity.trust_domain != principal.identity.trust_domain:
        raise InvalidArgument.field("forwarded_for", "an identity of this trust domain")
    return str(identity)


async def _fetch(
    files: Files, source: PeerSource, node_id: str, remote: RemoteFile, name: str
) -> None:
    if files.blobs.exists(remote.sha256):
        return  # the same bytes are here already (another owner's file)
    writer = files.blobs.writer()
    try:
        async for chunk in source.chunks(node_id, remote.file_id):
            if writer.size + len(chunk) > remote.size:
                raise InvalidArgument(
                    f"files.{name}: peer {node_id} sent more than {remote.size} bytes",
                    reason="FILE_SIZE_MISMATCH",
                )
            await writer.append(chunk)
        await writer.flush()
        if writer.sha256 != remote.sha256 or writer.size != remote.size:
            raise InvalidArgument(
                f"files.{name}: the content from peer {node_id} has SHA-256 {writer.sha256}, "
                f"not {remote.sha256}",
                reason="FILE_HASH_MISMATCH",
            )
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
