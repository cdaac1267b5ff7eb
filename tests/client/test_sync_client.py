"""The blocking `Client`: the async API driven from a private loop, iterators included."""

from __future__ import annotations

import grpc
import pytest

from kodoclient import Client, ConnectConfig, KodoclientError, open_input_requests
from kodosumi.v1 import event_pb2 as pb

from .fake_node import FakeNode, status_event


def test_launch_watch_and_wait(fake_node: FakeNode, fake_config: ConnectConfig) -> None:
    with Client(fake_config) as client:
        assert [f.name for f in client.list_flows(tag="demo")] == ["hello"]
        assert client.get_flow("hello").entrypoint == "flows.hello:main"
        execution = client.launch("hello", {"name": "Cy"})
        events = list(client.watch(execution.execution_id))
        assert [e.seq for e in events] == list(range(1, 8))
        assert events[-2].result.text == "Hello, Cy!"
        final = client.wait(execution.execution_id)
        assert final.status == pb.EXECUTION_STATUS_SUCCEEDED
        assert client.node_info().node_id == "fake-node"


def test_errors_are_kodoclient_errors(fake_node: FakeNode, fake_config: ConnectConfig) -> None:
    with Client(fake_config) as client, pytest.raises(KodoclientError) as caught:
        client.launch("hello", {"name": 5})
    error = caught.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_INPUTS"
    assert [(v.field, v.description) for v in error.violations] == [
        ("inputs.name", "must be a string")
    ]
    assert "INVALID_ARGUMENT/INVALID_INPUTS" in str(error)


def test_breaking_out_of_a_live_watch_cancels_it(
    fake_node: FakeNode, fake_config: ConnectConfig
) -> None:
    execution_id = fake_node.create("hello")  # never ends unless the test says so
    with Client(fake_config) as client:
        for event in client.watch(execution_id):
            assert event.seq == 1
            break
        # The client still works after an abandoned stream.
        assert client.get_execution(execution_id).last_seq == 1
    with pytest.raises(RuntimeError, match="closed"):
        client.get_execution(execution_id)


def test_pages_history_and_pending_inputs(fake_node: FakeNode, fake_config: ConnectConfig) -> None:
    ids = [fake_node.create("hello") for _ in range(5)]
    fake_node.append(
        ids[0],
        [
            pb.Event(input_requested=pb.InputRequested(request_id="a")),
            pb.Event(input_requested=pb.InputRequested(request_id="b")),
            pb.Event(input_provided=pb.InputProvided(request_id="a")),
        ],
    )
    with Client(fake_config) as client:
        page, token = client.list_executions_page(page_size=2)
        assert [e.execution_id for e in page] == ids[::-1][:2] and token
        assert [e.execution_id for e in client.list_executions(page_size=2)] == ids[::-1]
        assert len(list(client.list_executions(limit=3, page_size=2))) == 3
        assert [e.seq for e in client.history(ids[0])] == [1, 2, 3, 4]
        assert [r.request_id for r in client.pending_inputs(ids[0])] == ["b"]
        fake_node.append(ids[0], [status_event(pb.EXECUTION_STATUS_CANCELLED)])
        assert client.pending_inputs(ids[0]) == []
        assert open_input_requests(client.history(ids[0])) == []
