"""The MIP-003 endpoints over the real stack: a registry, a node on Ray, `kodogate` as a
subprocess with its own enrolled gateway certificate, and a real HTTP client. The last test
stops the node (`node_down = "fail"`)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jcs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.stack import Stack, wait_status

SERVICES = [
    {
        "path": "hello",
        "flow": "hello",
        "name": "Hello",
        "demo": {"input": {"name": "Ada"}, "output": "hello Ada"},
    },
    {"path": "asks", "flow": "asks"},
    {"path": "fails", "flow": "fails"},
    {"path": "priced", "flow": "hello-priced"},
    {"path": "report", "flow": "report"},
    {"path": "summary", "flow": "summary"},
]


@pytest.fixture(scope="module")
async def stack(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    stack = Stack(Path(tmp_path_factory.mktemp("gateway")))
    await stack.start_daemons()
    await stack.enroll_gateway()
    config = stack.write_config(SERVICES, gateway={"node_down": "fail"})
    await asyncio.to_thread(stack.start_gateway, config)
    yield stack
    await stack.stop()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client() as client:
        yield client


def reference_hash(purchaser: str, data: object) -> str:
    """MIP-004 computed with an independent RFC 8785 implementation (`jcs`)."""
    return hashlib.sha256(purchaser.encode() + b";" + jcs.canonicalize(data)).hexdigest()


async def test_availability_and_input_schema_follow_mip003(http: httpx.AsyncClient) -> None:
    availability = (await http.get("/hello/availability")).json()
    assert availability["status"] == "available" and availability["type"] == "masumi-agent"
    schema = (await http.get("/hello/input_schema")).json()
    assert schema == {
        "input_data": [
            {
                "id": "name",
                "type": "text",
                "name": "name",
                "validations": [
                    {"validation": "min", "value": "1"},
                    {"validation": "max", "value": "64"},
                ],
            }
        ]
    }
    demo = (await http.get("/hello/demo")).json()
    assert demo == {"input": {"name": "Ada"}, "output": {"result": "hello Ada"}}
    assert (await http.get("/asks/demo")).status_code == 404


async def test_a_job_runs_to_completed_with_its_result(http: httpx.AsyncClient) -> None:
    body = {"identifier_from_purchaser": "buyer-0001", "input_data": {"name": "Grace"}}
    started = await http.post("/hello/start_job", json=body)
    assert started.status_code == 200, started.text
    job = started.json()
    for key in ("id", "blockchainIdentifier", "payByTime", "submitResultTime", "unlockTime",
                "externalDisputeUnlockTime", "agentIdentifier", "sellerVKey",
                "identifierFromPurchaser", "input_hash"):  # fmt: skip
        assert key in job
    assert job["identifierFromPurchaser"] == "buyer-0001"
    assert job["input_hash"] == reference_hash("buyer-0001", {"name": "Grace"})
    done = await wait_status(http, "/hello", job["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["result"] == "hello Grace"
    # The same purchaser id and input again: the same job (a retried request), not a second.
    again = await http.post("/hello/start_job", json=body)
    assert again.json()["id"] == job["id"]
    other = {"identifier_from_purchaser": "buyer-0001", "input_data": {"name": "Other"}}
    assert (await http.post("/hello/start_job", json=other)).status_code == 409


async def test_a_priced_flow_is_launched_with_a_quote_and_ends_with_a_receipt(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    body = {"identifier_from_purchaser": "q-1", "input_data": {"name": "Quoted"}}
    started = await http.post("/priced/start_job", json=body)
    done = await wait_status(http, "/priced", started.json()["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    link = stack.gateway_link()
    try:
        (run,) = [e async for e in link.client.list_executions(flow="hello-priced")]
        receipt = await link.client.quotes().receipt(run.execution_id)
    finally:
        await link.close()
    assert receipt.quote_id and receipt.execution_id == run.execution_id


async def test_files_a_run_saved_are_links_the_gateway_serves(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    body = {"identifier_from_purchaser": "r-1", "input_data": {"name": "Ada"}}
    job_id = (await http.post("/report/start_job", json=body)).json()["id"]
    done = await wait_status(http, "/report", job_id, {"completed", "failed"})
    assert done["status"] == "completed", done
    text, link_line = done["result"].split("\n\n")
    assert text == "report ready for Ada"
    name, url = link_line.split(": ", 1)
    assert name == "report.txt" and url.startswith(f"{stack.url}/report/files/{job_id}/")
    served = await http.get(url.removeprefix(stack.url))
    assert served.status_code == 200 and served.content == b"report for Ada\n"


async def test_inline_artifacts_are_kept_and_linked(stack: Stack, http: httpx.AsyncClient) -> None:
    body = {"identifier_from_purchaser": "s-1", "input_data": {"name": "Ada"}}
    job_id = (await http.post("/summary/start_job", json=body)).json()["id"]
    done = await wait_status(http, "/summary", job_id, {"completed", "failed"})
    assert done["status"] == "completed", done
    text, link_line = done["result"].split("\n\n")
    name, url = link_line.split(": ", 1)
    assert text == "summary ready for Ada" and name == "summary.json"
    served = await http.get(url.removeprefix(stack.url))
    assert served.status_code == 200 and served.json() == {"name": "Ada", "words": 2}
    assert served.headers["content-type"].startswith("application/json")
    other = await http.get(url.removeprefix(stack.url).replace("/summary/", "/hello/"))
    assert other.status_code == 404


async def test_a_failing_flow_is_failed_with_its_reason(http: httpx.AsyncClient) -> None:
    started = await http.post("/fails/start_job", json={"identifier_from_purchaser": "f-1"})
    done = await wait_status(http, "/fails", started.json()["id"], {"completed", "failed"})
    assert done["status"] == "failed" and done["reason"]


async def test_human_input_round_trip(http: httpx.AsyncClient) -> None:
    started = await http.post("/asks/start_job", json={"identifier_from_purchaser": "h-1"})
    job_id = started.json()["id"]
    waiting = await wait_status(http, "/asks", job_id, {"awaiting_input", "failed"})
    assert waiting["status"] == "awaiting_input", waiting
    (group,) = waiting["input_schema"]["input_groups"]
    assert group["id"] == waiting["id"] and group["title"] == "How many?"
    assert group["input_data"][0]["id"] == "n"
    status_id = waiting["id"]
    bad = await http.post(
        "/asks/provide_input",
        json={"job_id": job_id, "status_id": status_id, "input_data": {"n": "three"}},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "input_data.n"
    answered = await http.post(
        "/asks/provide_input",
        json={"job_id": job_id, "status_id": status_id, "input_data": {"n": 3}},
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["input_hash"] == reference_hash("h-1", {"n": 3})
    assert answered.json()["signature"]
    done = await wait_status(http, "/asks", job_id, {"completed", "failed"})
    assert done["status"] == "completed" and '"n": 3' in done["result"]
    late = await http.post(
        "/asks/provide_input",
        json={"job_id": job_id, "status_id": status_id, "input_data": {"n": 4}},
    )
    assert late.status_code == 409


async def test_bad_requests_get_400_404_409_413(http: httpx.AsyncClient) -> None:
    missing = await http.post("/hello/start_job", json={"input_data": {"name": "x"}})
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "identifier_from_purchaser"
    wrong = await http.post(
        "/hello/start_job",
        json={"identifier_from_purchaser": "b-2", "input_data": {"name": 5, "extra": 1}},
    )
    assert wrong.status_code == 400
    fields = {e["field"] for e in wrong.json()["errors"]}
    assert fields == {"input_data.name", "input_data.extra"}
    malformed = await http.post(
        "/hello/start_job", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert (await http.get("/hello/status", params={"job_id": "nope"})).status_code == 404
    assert (await http.get("/hello/status")).status_code == 400
    unknown = await http.post(
        "/hello/provide_input", json={"job_id": "nope", "status_id": "x", "input_data": {}}
    )
    assert unknown.status_code == 404
    huge = {"identifier_from_purchaser": "b-3", "input_data": {"name": "x" * (2 << 20)}}
    assert (await http.post("/hello/start_job", json=huge)).status_code == 413


async def test_a_job_is_only_seen_under_its_own_service(http: httpx.AsyncClient) -> None:
    """Job ids and file links do not cross services, and the gateway serves no file of the
    node that its job's result does not link."""
    body = {"identifier_from_purchaser": "iso-1", "input_data": {"name": "Iso"}}
    job_id = (await http.post("/hello/start_job", json=body)).json()["id"]
    await wait_status(http, "/hello", job_id, {"completed", "failed"})
    assert (await http.get("/asks/status", params={"job_id": job_id})).status_code == 404
    answer = {"job_id": job_id, "status_id": job_id, "input_data": {"n": 1}}
    assert (await http.post("/asks/provide_input", json=answer)).status_code == 404
    assert (await http.post("/hello/provide_input", json=answer)).status_code == 409
    assert (await http.get(f"/hello/files/{job_id}/sha256-0000")).status_code == 404
    assert (await http.get(f"/asks/files/{job_id}/x")).status_code == 404


async def test_admins_make_gateway_tokens_and_a_gateway_cannot(stack: Stack) -> None:
    """CreateEnrollmentToken for the gateway kind over the wire (what `koco gateway token`
    sends); the gateway's own certificate may not make tokens."""
    import grpc

    from kodosumi.rpc.channel import open_channel
    from kodosumi.server_identity import ServerExpectation
    from kodosumi.tls import TlsFiles
    from kodosumi.v1 import auth_pb2, auth_pb2_grpc
    from tests.gateway.stack import ADMIN, DOMAIN

    assert stack.registry is not None
    request = auth_pb2.CreateEnrollmentTokenRequest(kind=auth_pb2.IDENTITY_KIND_GATEWAY, name="gw2")
    admin = open_channel(
        stack.registry.address, stack.pki.user(ADMIN), expect=ServerExpectation.registry()
    )
    identity = stack.gateway_state / "identity"
    own = TlsFiles(identity / "ca.pem", identity / "cert.pem", identity / "key.pem").read()
    gateway = open_channel(stack.registry.address, own, expect=ServerExpectation.registry())
    try:
        made = await auth_pb2_grpc.AuthServiceStub(admin).CreateEnrollmentToken(request, timeout=10)
        assert made.identity == f"spiffe://{DOMAIN}/gateway/gw2"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await auth_pb2_grpc.AuthServiceStub(gateway).CreateEnrollmentToken(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        me = await auth_pb2_grpc.AuthServiceStub(gateway).WhoAmI(
            auth_pb2.WhoAmIRequest(), timeout=10
        )
        assert me.identity == f"spiffe://{DOMAIN}/gateway/gw" and list(me.roles) == ["gateway"]
    finally:
        await admin.close()
        await gateway.close()


async def test_health_and_metrics(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = (await http.get("/metrics")).text
    assert 'kodogate_jobs{state="completed"}' in metrics


async def test_the_agent_cards_are_signed_by_the_gateway(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    from a2a.types import a2a_pb2 as a2a
    from cryptography import x509
    from google.protobuf.json_format import ParseDict

    from kodosumi.agent_card import verify_card

    whole = (await http.get("/.well-known/agent-card.json")).json()
    assert {s["id"] for s in whole["skills"]} == {
        "hello",
        "asks",
        "fails",
        "priced",
        "report",
        "summary",
    }
    one = (await http.get("/hello/.well-known/agent-card.json")).json()
    assert [s["id"] for s in one["skills"]] == ["hello"]
    assert stack.node is not None
    assert one["supportedInterfaces"][0]["url"] == stack.node.address
    card = ParseDict(one, a2a.AgentCard())
    ca = x509.load_pem_x509_certificate(stack.pki.ca_cert.read_bytes())
    signer = verify_card(card, ca)
    assert str(signer).endswith("/gateway/gw")


async def test_deeply_nested_json_is_400_not_a_crash(http: httpx.AsyncClient) -> None:
    deep = b'{"identifier_from_purchaser": "d", "input_data": {"name": ' + b"[" * 100_000
    deep += b"]" * 100_000 + b"}}"
    answer = await http.post(
        "/hello/start_job", content=deep, headers={"content-type": "application/json"}
    )
    assert answer.status_code in (400, 413)
    assert (await http.get("/healthz")).status_code == 200


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["identifier_from_purchaser", "input_data", "job_id", "status_id", "name", "n", ""]
)
BODIES = st.one_of(
    JSON,
    st.dictionaries(FIELDS, JSON, max_size=4),
    st.fixed_dictionaries({"identifier_from_purchaser": st.text(max_size=30), "input_data": JSON}),
    st.fixed_dictionaries(
        {"job_id": st.text(max_size=40), "status_id": st.text(max_size=40), "input_data": JSON}
    ),
)
RAW = st.binary(max_size=200)


# Hypothesis draws in a worker thread while this process's event loop (the node, Ray, gRPC)
# uses the global `random` on the main thread; it takes that for the strategies' own use.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_fuzzed_requests_never_get_a_500(stack: Stack) -> None:
    """Generated bodies, raw bytes and query strings against every endpoint of the app's
    own OpenAPI description: answers are 2xx or 4xx (503 only for a backend that is down)."""
    async with stack.client() as http:
        spec = (await http.get("/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if "{" not in path
    ]
    assert ("POST", "/hello/start_job") in operations

    def run() -> None:
        with httpx.Client(base_url=stack.url, timeout=30) as client:

            @settings(
                max_examples=250,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            )
            @given(
                operation=st.sampled_from(operations),
                body=BODIES,
                raw=RAW,
                use_raw=st.booleans(),
                query=st.dictionaries(st.sampled_from(["job_id", "x"]), st.text(max_size=30)),
            )
            def check(
                operation: tuple[str, str],
                body: object,
                raw: bytes,
                use_raw: bool,
                query: dict[str, str],
            ) -> None:
                method, path = operation
                if method == "GET":
                    answer = client.get(path, params=query)
                elif use_raw:
                    answer = client.post(
                        path, content=raw, headers={"content-type": "application/json"}
                    )
                else:
                    answer = client.post(path, json=body)
                assert answer.status_code < 500 or answer.status_code == 503, (
                    method,
                    path,
                    body,
                    answer.text,
                )
                answer.json() if "json" in answer.headers.get("content-type", "") else None

            check()

    await asyncio.to_thread(run)


async def test_last_a_job_whose_node_is_down_fails_with_the_reason(stack: Stack) -> None:
    """Runs last in this module: it stops the node."""
    assert stack.node is not None
    await stack.node.stop()
    stack.node = None
    async with stack.client() as http:
        await asyncio.sleep(2.1)  # past the availability cache
        availability = (await http.get("/hello/availability")).json()
        assert availability["status"] == "unavailable"
        assert "seller" in availability["message"]
        body = {"identifier_from_purchaser": "down-1", "input_data": {"name": "x"}}
        started = await http.post("/hello/start_job", json=body)
        assert started.status_code == 200
        done = await wait_status(http, "/hello", started.json()["id"], {"completed", "failed"})
    assert done["status"] == "failed"
    assert done["reason"].startswith("NODE_UNAVAILABLE: node 'seller'")
