"""Payments through the Masumi payment service's HTTP API (an in-process stand-in that follows
its real shapes, tests/gateway/masumi_standin.py) over the real stack: lock -> run -> result
submitted; a service that is down; a gateway killed mid-job (SIGKILL) and started again; many
concurrent start_job calls with one purchaser id."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.input_hash import input_hash
from gateway.job_store import JobStore
from gateway.jobs import Job, JobState, PaymentState
from kodosumi.jsonvalue import struct_to_dict
from tests.gateway.masumi_standin import API_KEY, MasumiStandIn
from tests.gateway.stack import Stack, wait_status

AGENT = "a" * 56 + "6167656e74"  # a policy id (56 hex) + an asset name, as the registry mints
SERVICES = [
    {
        "path": "hello",
        "flow": "hello",
        "agent_identifier": AGENT,
        "seller_vkey": "seller-vkey",
        "price": {"amount": "5000000", "unit": ""},
    },
    {"path": "sleepy", "flow": "sleepy", "agent_identifier": AGENT},
]


@pytest.fixture(scope="module")
async def standin() -> AsyncIterator[MasumiStandIn]:
    service = MasumiStandIn()
    await asyncio.to_thread(service.start)
    yield service
    await asyncio.to_thread(service.stop)


@pytest.fixture(scope="module")
async def stack(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory, standin: MasumiStandIn
) -> AsyncIterator[Stack]:
    stack = Stack(Path(tmp_path_factory.mktemp("gateway-pay")))
    await stack.start_daemons()
    await stack.enroll_gateway()
    stack.config_path = stack.write_config(
        SERVICES,
        payments={"backend": "masumi", "poll_interval_seconds": 0.1},
        masumi={"url": standin.url, "api_key": API_KEY, "network": "Preprod"},
    )
    await asyncio.to_thread(stack.start_gateway, stack.config_path)
    yield stack
    await stack.stop()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client() as client:
        yield client


def purchaser(n: int) -> str:
    return f"{n:016x}"


async def test_a_paid_job_waits_for_funds_runs_and_submits_its_result_hash(
    http: httpx.AsyncClient, standin: MasumiStandIn
) -> None:
    buyer = purchaser(1)
    started = await http.post(
        "/hello/start_job",
        json={"identifier_from_purchaser": buyer, "input_data": {"name": "Lovelace"}},
    )
    assert started.status_code == 200, started.text
    job = started.json()
    payment = standin.payments[job["blockchainIdentifier"]]
    assert payment["inputHash"] == job["input_hash"]
    assert payment["identifierFromPurchaser"] == buyer
    assert payment["RequestedFunds"] == [{"amount": "5000000", "unit": ""}]
    assert job["payByTime"] == int(payment["payByTime"])
    assert job["agentIdentifier"] == AGENT and job["sellerVKey"] == "seller-vkey"
    # Not paid: it waits and nothing runs.
    await asyncio.sleep(0.5)
    status = (await http.get("/hello/status", params={"job_id": job["id"]})).json()
    assert status["status"] == "awaiting_payment"
    standin.lock(job["blockchainIdentifier"])
    done = await wait_status(http, "/hello", job["id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["result"] == "hello Lovelace"
    expected = hashlib.sha256(f"{buyer};hello Lovelace".encode()).hexdigest()
    deadline = time.monotonic() + 30
    # The stand-in runs on its own thread: poll it with a deadline.
    while payment["NextAction"]["resultHash"] is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert payment["NextAction"] == {
        "requestedAction": "SubmitResultRequested",
        "errorType": None,
        "errorNote": None,
        "resultHash": expected,
    }


async def test_a_payment_service_that_is_down_is_503_and_nothing_runs(
    http: httpx.AsyncClient, standin: MasumiStandIn
) -> None:
    standin.down = True
    try:
        body = {"identifier_from_purchaser": purchaser(2), "input_data": {"name": "x"}}
        refused = await http.post("/hello/start_job", json=body)
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
        await asyncio.sleep(2.1)  # past the availability cache
        availability = (await http.get("/hello/availability")).json()
        assert availability["status"] == "unavailable"
    finally:
        standin.down = False
    # The retry with the same purchaser id gets its job and one payment request.
    retried = await http.post("/hello/start_job", json=body)
    assert retried.status_code == 200
    assert standin.payments[retried.json()["blockchainIdentifier"]]["onChainState"] is None


async def test_purchaser_ids_are_what_the_payment_service_accepts(http: httpx.AsyncClient) -> None:
    bad = await http.post(
        "/hello/start_job", json={"identifier_from_purchaser": "not hex!", "input_data": {}}
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "identifier_from_purchaser"


async def test_concurrent_start_job_with_one_purchaser_id_makes_one_job_and_one_payment(
    http: httpx.AsyncClient, standin: MasumiStandIn
) -> None:
    before = standin.calls["POST /payment/"]
    body = {"identifier_from_purchaser": purchaser(3), "input_data": {"name": "same"}}
    answers = await asyncio.gather(*(http.post("/hello/start_job", json=body) for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.json()["blockchainIdentifier"] for a in answers}) == 1
    assert standin.calls["POST /payment/"] - before == 1


async def test_a_gateway_killed_mid_job_resumes_without_launching_or_paying_twice(
    stack: Stack, standin: MasumiStandIn
) -> None:
    buyer = purchaser(4)
    body = {"identifier_from_purchaser": buyer, "input_data": {"seconds": 3}}
    async with stack.client() as http:
        job = (await http.post("/sleepy/start_job", json=body)).json()
        standin.lock(job["blockchainIdentifier"])
        await wait_status(http, "/sleepy", job["id"], {"running"})
    stack.kill_gateway()  # SIGKILL: no goodbye
    await asyncio.to_thread(stack.start_gateway, stack.config_path)
    async with stack.client() as http:
        again = (await http.post("/sleepy/start_job", json=body)).json()
        assert again["id"] == job["id"]
        assert again["blockchainIdentifier"] == job["blockchainIdentifier"]
        done = await wait_status(http, "/sleepy", job["id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["result"] == "slept"
    # One execution of that job on the node, one payment request, one result submitted.
    link = stack.gateway_link()
    try:
        runs = [e async for e in link.client.list_executions(flow="sleepy")]
    finally:
        await link.close()
    assert len(runs) == 1
    payments = [p for p in standin.payments.values() if p["identifierFromPurchaser"] == buyer]
    assert len(payments) == 1
    assert payments[0]["NextAction"]["requestedAction"] == "SubmitResultRequested"


async def test_a_launch_the_gateway_did_not_write_down_is_adopted_not_repeated(
    stack: Stack, standin: MasumiStandIn
) -> None:
    """The narrowest crash: the node took the launch, the gateway died before it wrote the
    execution id. The next process finds the run (its own, same flow and inputs, unclaimed)
    and follows it instead of launching again."""
    buyer, inputs = purchaser(5), {"seconds": 0.2}
    stack.kill_gateway()
    # What the dead process had done: a payment requested and locked, the job `launching`
    # with no execution id, and the launch itself on the node.
    async with httpx.AsyncClient(base_url=standin.url, headers={"token": API_KEY}) as pay:
        created = await pay.post(
            "/api/v1/payment/",
            json={
                "inputHash": input_hash(inputs, buyer),
                "network": "Preprod",
                "agentIdentifier": AGENT,
                "payByTime": "2999-01-01T00:00:00.000Z",
                "submitResultTime": "2999-01-02T00:00:00.000Z",
                "identifierFromPurchaser": buyer,
            },
        )
    ref = created.json()["data"]["blockchainIdentifier"]
    standin.lock(ref)
    link = stack.gateway_link()
    try:
        launched = await link.launch("sleepy", inputs)
    finally:
        await link.close()
    store = await JobStore.open(stack.gateway_state / "jobs.sqlite")
    try:
        job, _ = await store.create(
            Job("crash-job", "sleepy", buyer, inputs, input_hash(inputs, buyer))
        )
        await store.update(
            job,
            state=JobState.LAUNCHING,
            payment=PaymentState.LOCKED,
            payment_ref=ref,
            launching_at=time.time() - 1,
        )
    finally:
        await store.close()
    await asyncio.to_thread(stack.start_gateway, stack.config_path)
    async with stack.client() as http:
        done = await wait_status(http, "/sleepy", "crash-job", {"completed", "failed"})
    assert done["status"] == "completed", done
    link = stack.gateway_link()
    try:
        runs = [
            e.execution_id
            async for e in link.client.list_executions(flow="sleepy")
            if struct_to_dict(e.inputs) == inputs
        ]
    finally:
        await link.close()
    assert runs == [launched]
