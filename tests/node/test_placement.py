"""Placement (issue 12): per flow (catalog) and per launch, mapped onto Ray actor options;
executors with different placements are never shared; GetNodeInfo says which Ray node
hosts which executor. Ordinary users cannot choose hosts; bad values name their field."""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
import ray

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument, PermissionDenied
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import event_pb2, flow_pb2, node_pb2
from kodosumid.cli import build_config, parse_args
from kodosumid.config import FlowEntry, PoolConfig, flows_from
from kodosumid.executors.placement import merged
from kodosumid.executors.port import ANYWHERE, Placement
from kodosumid.executors.ray_placement import actor_options
from tests.node.conftest import TEST_FLOWS, NodeFactory
from tests.node.helpers import collect, launch, statuses

S = event_pb2


def test_catalog_placement_is_parsed_and_checked() -> None:
    (flow,) = flows_from(
        [
            {
                "name": "gpu",
                "entrypoint": "m:f",
                "resources": {"GPU": 1, "big_memory": 2},
                "labels": {"gpu": "a100"},
                "node": "10.0.0.7",
            }
        ]
    )
    assert flow.placement == Placement({"GPU": 1.0, "big_memory": 2.0}, {"gpu": "a100"}, "10.0.0.7")
    for raw, field in [
        ({"resources": {"GPU": -1}}, "flows[0].resources[GPU]"),
        ({"resources": {"GPU": float("inf")}}, "flows[0].resources[GPU]"),
        ({"resources": {"bad name!": 1}}, "flows[0].resources[bad name!]"),
        ({"labels": {"gpu": 1}}, "flows[0].labels[gpu]"),
        ({"labels": "gpu"}, "flows[0].labels"),
        ({"node": "x" * 500}, "flows[0].node"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            flows_from([{"name": "f", "entrypoint": "m:f", **raw}])
        assert caught.value.violations[0].field == field


def test_a_launch_placement_wins_key_by_key() -> None:
    flow = Placement({"GPU": 1.0}, {"gpu": "a100", "zone": "a"}, "h1")
    launch_ = Placement({"CPU": 2.0}, {"zone": "b"}, "")
    assert merged(flow, launch_) == Placement(
        {"GPU": 1.0, "CPU": 2.0}, {"gpu": "a100", "zone": "b"}, "h1"
    )
    assert merged(flow, ANYWHERE) is flow


def test_placement_maps_onto_ray_actor_options(ray_cluster: None) -> None:
    node_id = ray.get_runtime_context().get_node_id()
    options = actor_options(
        Placement({"CPU": 0.5, "GPU": 1.0, "memory": 1e6, "big": 2.0}, {"gpu": "a100"}, "127.0.0.1")
    )
    assert options["num_cpus"] == 0.5 and options["num_gpus"] == 1.0
    assert options["memory"] == 1e6 and options["resources"] == {"big": 2.0}
    assert options["label_selector"] == {"gpu": "a100"}
    assert options["scheduling_strategy"].node_id == node_id
    assert actor_options(ANYWHERE) == {"num_cpus": 0}


PLACED_FLOWS = (
    *TEST_FLOWS,
    FlowEntry(
        "sleepy-here",
        "tests.flowlib:sleepy",
        placement=Placement({"CPU": 0.25}, {}, "127.0.0.1"),
    ),
    FlowEntry("sleepy-nowhere", "tests.flowlib:sleepy", placement=Placement({}, {"gpu": "h100"})),
)


async def _executor_of(node, execution_id: str) -> str:  # type: ignore[no-untyped-def]
    record = await node.app.store.get_execution(execution_id)
    assert record is not None
    return str(record.executor)


async def test_placed_flows_get_executors_of_their_own_on_the_matching_node(
    start_node: NodeFactory,
) -> None:
    node = await start_node(node_id="placing-node", flows=PLACED_FLOWS)
    anywhere = await launch(node.flows, "sleepy", {"seconds": 0.5})
    here = await launch(node.flows, "sleepy-here", {"seconds": 0.5})
    for execution_id in (anywhere, here):
        assert statuses(await collect(node.flows, execution_id))[-1] == S.EXECUTION_STATUS_SUCCEEDED
    # Both flows are "shared", yet different placements never share an executor.
    placed, free = await _executor_of(node, here), await _executor_of(node, anywhere)
    assert placed != free
    info = (await node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)).node
    by_name = {e.name: e for e in info.executors}
    assert by_name[placed].placement_node == "127.0.0.1"
    assert dict(by_name[placed].resources) == {"CPU": 0.25}
    assert by_name[placed].ray_node_id == ray.get_runtime_context().get_node_id()
    assert by_name[placed].ray_node_address == "127.0.0.1"
    assert by_name[free].placement_node == ""

    # A launch-time placement (an admin's): an executor of its own as well.
    response = await node.flows.LaunchExecution(
        flow_pb2.LaunchExecutionRequest(
            flow="sleepy",
            inputs=dict_to_struct({"seconds": 0.1}),
            placement=flow_pb2.Placement(resources={"CPU": 0.5}),
        ),
        timeout=30,
    )
    launched = response.execution.execution_id
    events = await collect(node.flows, launched)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED, events[-1]
    assert await _executor_of(node, launched) not in (placed, free)


async def test_a_placement_no_ray_node_matches_fails_the_launch_saying_so(
    start_node: NodeFactory,
) -> None:
    quick = PoolConfig(
        shared_executors=1,
        warm_executors=0,
        preload_modules=(),
        start_timeout_seconds=15.0,
        acquire_timeout_seconds=16.0,
        retry_max_seconds=0.5,
    )
    node = await start_node(node_id="unplaceable-node", flows=PLACED_FLOWS, pool=quick)
    execution_id = await launch(node.flows, "sleepy-nowhere", {"seconds": 0.1})
    events = await collect(node.flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    reason = events[-1].status_changed.reason
    assert "no executor could be started" in reason and "\n" not in reason
    # The node itself is fine: unplaceable flows do not make it NOT_SERVING.
    info = (await node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)).node
    assert info.degraded_reason == ""

    response = await node.flows.LaunchExecution(
        # `seconds` is required: the node reads sleepy's signature (issue 17).
        flow_pb2.LaunchExecutionRequest(
            flow="sleepy",
            inputs=dict_to_struct({"seconds": 0.1}),
            placement=flow_pb2.Placement(node="h9"),
        ),
        timeout=30,
    )
    events = await collect(node.flows, response.execution.execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert "no alive Ray node 'h9'" in events[-1].status_changed.reason


async def test_users_cannot_choose_hosts_and_bad_placements_name_their_field(
    start_node: NodeFactory,
) -> None:
    node = await start_node(node_id="guarded-node")
    executions = node.app.executions
    assert executions is not None
    mallory = Principal(SpiffeId.user("local.kodosumi", "mallory"), frozenset({"user"}))
    with pytest.raises(PermissionDenied) as denied:
        await executions.launch(
            mallory, "hello", {"name": "m"}, placement=Placement({"GPU": 8.0}, {}, "")
        )
    assert denied.value.reason == "PLACEMENT_NOT_ALLOWED"
    for placement, field in [
        (flow_pb2.Placement(resources={"GPU": -1}), "placement.resources[GPU]"),
        (flow_pb2.Placement(labels={"k": "v" * 100}), "placement.labels[k]"),
        (flow_pb2.Placement(node="not a node"), "placement.node"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await node.flows.LaunchExecution(
                flow_pb2.LaunchExecutionRequest(flow="hello", placement=placement), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (caught.value.details() or "")


def test_flow_entry_default_is_anywhere() -> None:
    assert replace(TEST_FLOWS[0]).placement == ANYWHERE


def test_flow_flags_give_a_catalog_flow_its_placement() -> None:
    args = parse_args(
        [
            *("--flow", "lanflows.where:whereami", "--flow-labels", "host=h3,zone=a"),
            *("--flow-resources", "CPU=0.5,gpu_slot=1", "--flow-node", "10.213.0.13"),
            *("--flow", "tests.flowlib:sleepy"),
            *("--flow", "flows.basic:hello", "--flow-labels", "host=h2"),
        ]
    )
    flows = {f.name: f for f in build_config(args).flows or ()}
    assert flows["lanflows.where.whereami"].placement == Placement(
        {"CPU": 0.5, "gpu_slot": 1.0}, {"host": "h3", "zone": "a"}, "10.213.0.13"
    )
    assert flows["tests.flowlib.sleepy"].placement == ANYWHERE
    # A flow the catalog already offers keeps its entry and takes the placement.
    assert flows["hello"].placement == Placement({}, {"host": "h2"}, "")
    assert flows["hello"].input_schema != {"type": "object"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--flow-labels", "host=h3"], "--flow-labels must follow the --flow"),
        (["--flow", "m:f", "--flow-labels", "host"], "'host' is not KEY=VALUE"),
        (["--flow", "m:f", "--flow-resources", "GPU=many"], "the amount is not a number"),
    ],
)
def test_misplaced_or_malformed_flow_flags_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_flow_placements_name_the_flag() -> None:
    for argv, field in [
        (["--flow", "m:f", "--flow-resources", "GPU=-1"], "--flow m:f.resources[GPU]"),
        (["--flow", "m:f", "--flow-labels", "host=a b"], "--flow m:f.labels[host]"),
        (["--flow", "m:f", "--flow-node", "not a node"], "--flow m:f.node"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            build_config(parse_args(argv))
        assert caught.value.violations[0].field == field
