"""Which registry changes a new registration makes: a pure diff of the stored and the new node.

Re-registering the same state makes no change at all, so registrations are idempotent and
watchers see only what really changed.
"""

from __future__ import annotations

from registryd.model import ChangeDraft, ChangeKind, NodeRecord, NodeState


def node_fields_differ(before: NodeRecord, after: NodeRecord) -> bool:
    """Whether what a node asserts about itself (flows aside) changed."""
    return (before.endpoints, before.version, before.capabilities, before.identity) != (
        after.endpoints,
        after.version,
        after.capabilities,
        after.identity,
    )


def registration_changes(
    before: NodeRecord | None, after: NodeRecord, at: float
) -> list[ChangeDraft]:
    """The changes that turn `before` (None: never registered) into the ONLINE node `after`.

    The node change comes first (NODE_ONLINE when it was not online, NODE_UPDATED when its own
    fields changed), then one change per removed, added or altered flow.
    """
    drafts: list[ChangeDraft] = []
    if before is None or before.state is not NodeState.ONLINE:
        drafts.append(ChangeDraft(ChangeKind.NODE_ONLINE, at))
    elif node_fields_differ(before, after):
        drafts.append(ChangeDraft(ChangeKind.NODE_UPDATED, at))
    old = {f.name: f for f in before.flows} if before is not None else {}
    new = {f.name for f in after.flows}
    drafts += [
        ChangeDraft(ChangeKind.FLOW_REMOVED, at, flow)
        for name, flow in old.items()
        if name not in new
    ]
    for flow in after.flows:
        previous = old.get(flow.name)
        if previous is None:
            drafts.append(ChangeDraft(ChangeKind.FLOW_ADDED, at, flow))
        elif previous != flow:
            drafts.append(ChangeDraft(ChangeKind.FLOW_UPDATED, at, flow))
    return drafts
