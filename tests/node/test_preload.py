"""CrewAI is preloaded only for a catalog with CrewAI flows (issue 10): a node of plain flows
starts its executors without importing crewai; one with a crew spec preloads it (in the
executors it starts ahead of launches, not in one a launch waits for)."""

from __future__ import annotations

from pathlib import Path

from kodosumi.jsonvalue import value_to_python
from kodosumi.v1 import event_pb2
from kodosumid.config import FlowEntry, PoolConfig
from kodosumid.executors.port import Placement
from kodosumid.executors.preload import CREW_PRELOAD, effective_preload, uses_crewai
from tests.node.conftest import REPO, NodeFactory
from tests.node.helpers import collect, launch, statuses

S = event_pb2
DEFAULT = PoolConfig().preload_modules
PYTHON_PATH = (str(REPO),)


def test_which_entrypoints_use_crewai() -> None:
    assert uses_crewai("assets/search.yaml", PYTHON_PATH)
    assert uses_crewai("flows.serviceplan:ServicePlanFlow", PYTHON_PATH)
    assert not uses_crewai("flows.basic:hello", PYTHON_PATH)
    assert not uses_crewai("tests.flowlib:hello", PYTHON_PATH)
    assert not uses_crewai("tests.flowlib.hello", PYTHON_PATH)  # a dotted path
    # Cannot be read: assume it does (preloading only costs time).
    assert uses_crewai("no_such_package.mod:f", PYTHON_PATH)
    assert effective_preload(DEFAULT, ["tests.flowlib:hello"], PYTHON_PATH) == ()
    assert effective_preload(
        DEFAULT, ["tests.flowlib:hello", "assets/search.yaml"], PYTHON_PATH
    ) == (CREW_PRELOAD,)
    assert effective_preload(("json",), ["tests.flowlib:hello"], PYTHON_PATH) == ("json",)


def test_reading_a_flow_does_not_import_it() -> None:
    import sys

    assert not uses_crewai("preload_probe:f", (str(Path(__file__).parent),))
    assert "preload_probe" not in sys.modules


async def _crewai_loaded(node, flow: str) -> bool:  # type: ignore[no-untyped-def]
    execution_id = await launch(node.flows, flow, {"names": ["crewai"]})
    events = await collect(node.flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    result = next(e.result for e in events if e.HasField("result"))
    return bool(value_to_python(result.json)["crewai"])


async def test_a_plain_flow_node_starts_executors_without_crewai(
    start_node: NodeFactory,
) -> None:
    flows = (FlowEntry("loaded", "tests.flowlib:loaded_modules"),)
    pool = PoolConfig(shared_executors=1, warm_executors=0)  # the default preload
    node = await start_node(node_id="plain-node", flows=flows, pool=pool)
    assert node.app.pool is not None and node.app.pool.config.preload_modules == ()
    assert not await _crewai_loaded(node, "loaded")


async def test_a_node_with_a_crew_flow_preloads_crewai(start_node: NodeFactory) -> None:
    flows = (
        FlowEntry("loaded", "tests.flowlib:loaded_modules"),
        FlowEntry("search", str(REPO / "assets" / "search.yaml")),
        FlowEntry(
            "loaded-placed",
            "tests.flowlib:loaded_modules",
            placement=Placement({"CPU": 0.01}, {}, "127.0.0.1"),
        ),
    )
    pool = PoolConfig(shared_executors=1, warm_executors=0)
    node = await start_node(node_id="crew-preload-node", flows=flows, pool=pool)
    assert node.app.pool is not None
    assert node.app.pool.config.preload_modules == (CREW_PRELOAD,)
    assert await _crewai_loaded(node, "loaded")
    # An executor made for a launch (here: for a placement) is not preloaded: the launch
    # waits for it, and a plain flow must not wait for CrewAI's import.
    assert not await _crewai_loaded(node, "loaded-placed")
