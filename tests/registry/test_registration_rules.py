"""Pure parts of registration: which changes a registration makes, which requests are
well-formed, and how flows keep the node's message verbatim."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kodosumi.errors import InvalidArgument
from kodosumi.v1 import flow_pb2
from registryd import codec
from registryd.changes import registration_changes
from registryd.model import ChangeKind, NodeLoad, NodeRecord, NodeState
from registryd.validate import check_announcement
from tests.registry.helpers import announcement, flow, flow_pb


def record(flows: dict[str, tuple[str, ...]], state: NodeState = NodeState.ONLINE) -> NodeRecord:
    return NodeRecord(
        node_id="a",
        identity="",
        endpoints=("h:1",),
        flows=tuple(flow("a", name, *tags) for name, tags in flows.items()),
        version="1",
        capabilities=(),
        state=state,
        state_reason="",
        load=NodeLoad(),
        first_registered_at=0,
        state_changed_at=0,
        last_heartbeat_at=0,
        lease_expires_at=0,
        heartbeat_interval=10,
    )


def kinds(before: NodeRecord | None, after: NodeRecord) -> list[tuple[ChangeKind, str]]:
    return [
        (d.kind, d.flow.name if d.flow else "") for d in registration_changes(before, after, 1.0)
    ]


def test_a_first_registration_announces_the_node_and_each_flow() -> None:
    assert kinds(None, record({"x": (), "y": ()})) == [
        (ChangeKind.NODE_ONLINE, ""),
        (ChangeKind.FLOW_ADDED, "x"),
        (ChangeKind.FLOW_ADDED, "y"),
    ]


def test_the_same_state_makes_no_change() -> None:
    node = record({"x": ("t",)})
    assert (
        kinds(node, replace(node, last_heartbeat_at=99, load=NodeLoad(running_executions=1))) == []
    )


def test_coming_back_is_node_online_even_with_the_same_flows() -> None:
    assert kinds(record({"x": ()}, NodeState.OFFLINE), record({"x": ()})) == [
        (ChangeKind.NODE_ONLINE, "")
    ]


def test_node_fields_make_node_updated() -> None:
    before = record({})
    for changed in (
        replace(before, endpoints=("h:2",)),
        replace(before, version="2"),
        replace(before, capabilities=("gpu",)),
    ):
        assert kinds(before, changed) == [(ChangeKind.NODE_UPDATED, "")]


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.tuples(st.sampled_from(["t", "u"]))),
    st.dictionaries(st.sampled_from("abcdef"), st.tuples(st.sampled_from(["t", "u"]))),
)
def test_flow_changes_turn_the_old_catalog_into_the_new(
    old: dict[str, tuple[str, ...]], new: dict[str, tuple[str, ...]]
) -> None:
    before, after = record(old), record(new)
    catalog = {f.name: f for f in before.flows}
    for draft in registration_changes(before, after, 1.0):
        assert draft.flow is not None
        if draft.kind is ChangeKind.FLOW_REMOVED:
            del catalog[draft.flow.name]
        else:
            catalog[draft.flow.name] = draft.flow
    assert catalog == {f.name: f for f in after.flows}


def test_flows_are_kept_verbatim_with_the_node_filled_in() -> None:
    sent = flow_pb("hello", "demo")
    entry = codec.flow_entry(sent, "a", 0)
    back = codec.flow_to_pb(entry)
    assert back.node_id == "a"
    back.node_id = ""
    assert back == sent
    assert entry == codec.flow_entry(flow_pb2.Flow.FromString(sent.SerializeToString()), "a", 0)
    with pytest.raises(InvalidArgument) as caught:
        codec.flow_entry(flow_pb2.Flow(name="x", node_id="b"), "a", 3)
    assert caught.value.violations[0].field == "flows[3].node_id"


def test_every_bad_field_is_named_at_once() -> None:
    bad = replace(
        announcement("a", (("ok", ()), ("ok", ()), ("white space", ("",)))),
        node_id="no/slash",
        endpoints=("", "host with space:1"),
        capabilities=("",),
    )
    with pytest.raises(InvalidArgument) as caught:
        check_announcement(bad)
    assert [v.field for v in caught.value.violations] == [
        "node_id",
        "endpoints[0]",
        "endpoints[1]",
        "capabilities[0]",
        "flows[1].name",
        "flows[2].name",
        "flows[2].tags[0]",
    ]


def test_a_well_formed_announcement_passes() -> None:
    check_announcement(announcement("node-1.example_A~b@c+d"))
