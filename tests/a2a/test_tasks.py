"""Tasks over a real node with the a2a-sdk client: input required, cancel, subscribe, list,
other users, versions, and the spec's errors for bad requests."""

from __future__ import annotations

import asyncio

import pytest
from a2a.client import ClientCallContext
from a2a.client.errors import A2AClientError
from a2a.types import a2a_pb2 as a2a
from a2a.utils.errors import (
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
    VersionNotSupportedError,
)

from kodosumi.jsonvalue import value_to_python
from tests.a2a.conftest import ClientMaker
from tests.a2a.helpers import (
    TERMINAL,
    collapse,
    collect,
    data_message,
    send_request,
    states,
    text_message,
)


async def _running(client: object, task_id: str) -> None:
    """Wait until the task is WORKING (polling GetTask with a deadline)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        task = await client.get_task(a2a.GetTaskRequest(id=task_id))  # type: ignore[attr-defined]
        if task.status.state == a2a.TASK_STATE_WORKING:
            return
        assert asyncio.get_running_loop().time() < deadline, "task never started"
        await asyncio.sleep(0.05)


async def test_input_required_round_trips_form_approval_text(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="asks-kinds")
    items = await collect(client.send_message(send_request(data_message({}))))
    task_id = items[0].task.id
    answers = [data_message({"n": 7}), text_message("yes"), text_message("Ada")]
    kinds_seen = []
    for answer in answers:
        last = items[-1].status_update.status
        assert last.state == a2a.TASK_STATE_INPUT_REQUIRED  # the stream stopped at it
        prompt, data = last.message.parts
        request = value_to_python(data.data)
        assert prompt.text and request["request_id"] and "schema" in request
        kinds_seen.append(request["kind"])
        answer.task_id = task_id
        items = await collect(client.send_message(send_request(answer)))
        assert items[0].task.id == task_id
    assert kinds_seen == ["form", "approval", "text"]
    assert items[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED
    result = [i.artifact_update for i in items if i.HasField("artifact_update")][-1]
    data_parts = [p for p in result.artifact.parts if p.HasField("data")]
    assert value_to_python(data_parts[0].data) == {
        "form": {"n": 7},
        "approved": True,
        "name": "Ada",
    }


async def test_an_answer_that_violates_the_schema_is_invalid_params(
    a2a_client: ClientMaker,
) -> None:
    client = a2a_client(tenant="asks")
    items = await collect(client.send_message(send_request(data_message({}))))
    task_id = items[0].task.id
    with pytest.raises(InvalidParamsError):
        await collect(client.send_message(send_request(data_message({"n": "x"}, task_id))))
    # An explicit {request_id, value} answer works and the task completes.
    request_id = value_to_python(items[-1].status_update.status.message.parts[1].data)["request_id"]
    answer = data_message({"request_id": request_id, "value": {"n": 2}}, task_id)
    items = await collect(client.send_message(send_request(answer)))
    assert items[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED


async def test_cancel_while_running_and_after_the_end(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="sleepy", streaming=False)
    request = send_request(data_message({"seconds": 60}), return_immediately=True)
    task = (await collect(client.send_message(request)))[0].task
    await _running(client, task.id)
    cancelled = await client.cancel_task(a2a.CancelTaskRequest(id=task.id))
    assert cancelled.status.state == a2a.TASK_STATE_CANCELED
    with pytest.raises(TaskNotCancelableError):
        await client.cancel_task(a2a.CancelTaskRequest(id=task.id))
    # A message to an ended task is refused, and so is subscribing to it.
    with pytest.raises(UnsupportedOperationError):
        await collect(client.send_message(send_request(text_message("more", task.id))))


async def test_two_subscribers_see_the_same_order_snapshot_first(
    a2a_client: ClientMaker,
) -> None:
    client = a2a_client(tenant="counting")
    starter = a2a_client(tenant="counting", streaming=False)
    request = send_request(data_message({"steps": 40}), return_immediately=True)
    task = (await collect(starter.send_message(request)))[0].task
    subscription = a2a.SubscribeToTaskRequest(id=task.id)
    first, second = await asyncio.gather(
        collect(client.subscribe(subscription)), collect(client.subscribe(subscription))
    )
    for items in (first, second):
        assert items[0].HasField("task") and items[0].task.id == task.id
        assert states(items)[-1] == a2a.TASK_STATE_COMPLETED
    # Both end with the same updates in the same order (a later snapshot covers a prefix).
    tail = min(len(first), len(second)) - 1
    assert [i.SerializeToString() for i in first[-tail:]] == [
        i.SerializeToString() for i in second[-tail:]
    ]
    full = await client.get_task(a2a.GetTaskRequest(id=task.id))
    assert full.status.state == a2a.TASK_STATE_COMPLETED
    with pytest.raises(UnsupportedOperationError):
        await collect(client.subscribe(subscription))


async def test_subscribe_while_running_misses_nothing(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="sleepy")
    starter = a2a_client(tenant="sleepy", streaming=False)
    request = send_request(data_message({"seconds": 1.5}), return_immediately=True)
    task = (await collect(starter.send_message(request)))[0].task
    await _running(starter, task.id)
    items = await collect(client.subscribe(a2a.SubscribeToTaskRequest(id=task.id)))
    assert items[0].task.status.state == a2a.TASK_STATE_WORKING
    assert collapse(states(items)) == [a2a.TASK_STATE_WORKING, a2a.TASK_STATE_COMPLETED]
    assert any(i.HasField("artifact_update") for i in items)


async def test_a_wrong_a2a_version_is_refused(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="hello", streaming=False)
    old = ClientCallContext(service_parameters={"a2a-version": "0.3"})
    with pytest.raises(VersionNotSupportedError):
        await collect(client.send_message(send_request(text_message("x")), context=old))
    with pytest.raises(VersionNotSupportedError):
        await client.list_tasks(a2a.ListTasksRequest(), context=old)


async def test_another_users_task_is_not_found(a2a_client: ClientMaker) -> None:
    alice = a2a_client(tenant="hello", user="alice", streaming=False)
    bob = a2a_client(tenant="hello", user="bob", streaming=False)
    task = (await collect(alice.send_message(send_request(text_message("a")))))[0].task
    assert task.status.state == a2a.TASK_STATE_COMPLETED
    with pytest.raises(TaskNotFoundError):
        await bob.get_task(a2a.GetTaskRequest(id=task.id))
    with pytest.raises(TaskNotFoundError):
        await bob.cancel_task(a2a.CancelTaskRequest(id=task.id))
    with pytest.raises(TaskNotFoundError):
        await collect(bob.send_message(send_request(text_message("b", task.id))))
    listed = await bob.list_tasks(a2a.ListTasksRequest())
    assert task.id not in {t.id for t in listed.tasks}
    mine = await alice.list_tasks(a2a.ListTasksRequest())
    assert task.id in {t.id for t in mine.tasks}


async def test_list_tasks_pages_newest_first_with_total_size(a2a_client: ClientMaker) -> None:
    carol = a2a_client(tenant="hello", user="carol", streaming=False)
    ids = []
    for i in range(5):
        items = await collect(carol.send_message(send_request(text_message(str(i)))))
        ids.append(items[0].task.id)
    seen: list[str] = []
    token = ""
    while True:
        page = await carol.list_tasks(a2a.ListTasksRequest(page_size=2, page_token=token))
        assert page.total_size == 5
        assert len(page.tasks) <= 2
        assert all(not t.artifacts for t in page.tasks)  # include_artifacts is false
        seen += [t.id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    done = await carol.list_tasks(
        a2a.ListTasksRequest(status=a2a.TASK_STATE_COMPLETED, include_artifacts=True)
    )
    assert {t.id for t in done.tasks} == set(ids)
    assert all(t.artifacts for t in done.tasks)
    assert all(t.status.state in TERMINAL for t in done.tasks)
    one = await carol.list_tasks(a2a.ListTasksRequest(context_id=ids[0]))
    assert [t.id for t in one.tasks] == [ids[0]] and one.total_size == 1


async def test_bad_requests_get_the_specs_errors(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="hello", streaming=False)
    empty = a2a.Message(message_id="m", role=a2a.ROLE_USER)
    with pytest.raises(InvalidParamsError):
        await collect(client.send_message(send_request(empty)))
    with pytest.raises(TaskNotFoundError):
        await client.get_task(a2a.GetTaskRequest(id="0" * 32))
    with pytest.raises(TaskNotFoundError):
        await collect(client.send_message(send_request(text_message("x", "f" * 32))))
    with pytest.raises(TaskNotFoundError):
        await client.cancel_task(a2a.CancelTaskRequest(id="nope"))
    oversized = text_message("x" * (1024 * 1024 + 10))
    with pytest.raises(InvalidParamsError):
        await collect(client.send_message(send_request(oversized)))
    wrong_inputs = a2a_client(tenant="emit-many", streaming=False)
    with pytest.raises(InvalidParamsError):
        await collect(wrong_inputs.send_message(send_request(data_message({"count": -1}))))
    with pytest.raises(InvalidParamsError):
        await collect(wrong_inputs.send_message(send_request(text_message("3"))))
    nowhere = a2a_client(tenant="no-such-flow", streaming=False)
    with pytest.raises(InvalidParamsError):
        await collect(nowhere.send_message(send_request(text_message("x"))))
    with pytest.raises(PushNotificationNotSupportedError):
        await client.get_task_push_notification_config(
            a2a.GetTaskPushNotificationConfigRequest(task_id="t", id="c")
        )


async def test_a_private_flow_is_refused_to_outsiders(a2a_client: ClientMaker) -> None:
    dave = a2a_client(tenant="private", user="dave", streaming=False)
    with pytest.raises(A2AClientError) as caught:
        await collect(dave.send_message(send_request(data_message({"name": "x"}))))
    assert "FLOW_NOT_ALLOWED" in str(caught.value) or "may not launch" in str(caught.value)
