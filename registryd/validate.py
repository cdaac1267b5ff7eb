"""What a well-formed registration looks like. Violations name the request field
(`flows[2].name`), so a node sees exactly what to fix in one INVALID_ARGUMENT."""

from __future__ import annotations

from kodosumi.errors import FieldViolation, InvalidArgument
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from registryd.model import NodeAnnouncement

MAX_ENDPOINTS = 16
MAX_FLOWS = 1000
MAX_TAGS = 64
MAX_CAPABILITIES = 64
MAX_TEXT = 256


def check_node_id(node_id: str, field: str = "node_id") -> None:
    """A node id is one SPIFFE path segment, as in `spiffe://<domain>/node/<id>`."""
    if problem := _segment_problem(node_id):
        raise InvalidArgument.field(field, problem)


def _segment_problem(name: str) -> str:
    """Node ids and flow names are SPIFFE path segments (`/node/<id>`, `/flow/<node>/<flow>`)."""
    if not name:
        return "required"
    try:
        SpiffeId.node("registry.check", name)
    except InvalidSpiffeId:
        return "1 to 128 characters of A-Z a-z 0-9 . _ ~ @ + -"
    return ""


def _text_problem(value: str, *, required: bool) -> str:
    if not value:
        return "required" if required else ""
    if len(value) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters"
    if value != value.strip() or any(c.isspace() for c in value):
        return "must not contain white space"
    return ""


def check_announcement(announcement: NodeAnnouncement) -> None:
    """Raise one InvalidArgument listing every bad field of a registration."""
    bad: list[FieldViolation] = []

    def flag(field: str, problem: str) -> None:
        if problem:
            bad.append(FieldViolation(field, problem))

    flag("node_id", _segment_problem(announcement.node_id))
    if not announcement.endpoints:
        flag("endpoints", "at least one address where the node serves")
    if len(announcement.endpoints) > MAX_ENDPOINTS:
        flag("endpoints", f"at most {MAX_ENDPOINTS}")
    for i, endpoint in enumerate(announcement.endpoints):
        flag(f"endpoints[{i}]", _text_problem(endpoint, required=True))
    if len(announcement.version) > MAX_TEXT:
        flag("version", f"at most {MAX_TEXT} characters")
    if len(announcement.capabilities) > MAX_CAPABILITIES:
        flag("capabilities", f"at most {MAX_CAPABILITIES}")
    for i, capability in enumerate(announcement.capabilities):
        flag(f"capabilities[{i}]", _text_problem(capability, required=True))
    if len(announcement.flows) > MAX_FLOWS:
        flag("flows", f"at most {MAX_FLOWS}")
    seen: set[str] = set()
    for i, flow in enumerate(announcement.flows):
        if problem := _segment_problem(flow.name):
            flag(f"flows[{i}].name", problem)
        elif flow.name in seen:
            flag(f"flows[{i}].name", f"flow {flow.name!r} is listed twice")
        seen.add(flow.name)
        if len(flow.tags) > MAX_TAGS:
            flag(f"flows[{i}].tags", f"at most {MAX_TAGS}")
        for j, tag in enumerate(flow.tags):
            if not tag:
                flag(f"flows[{i}].tags[{j}]", "must not be empty")
    if bad:
        summary = "; ".join(f"{v.field}: {v.description}" for v in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise InvalidArgument(f"invalid registration: {summary}{more}", violations=bad)
