"""The MIP-003 endpoints of one service, mounted at its path prefix (`/<path>/start_job`, ...).

Request and answer shapes are MIP-003's (docs/gateway.md has the mapping table); what the
gateway adds beside them (`job_id`, `reason`, `amounts`) is what the reference
implementations add too. The handlers are thin: check, store, kick the driver, answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.driver import JobDriver, Service
from gateway.http_errors import ApiError
from gateway.input_hash import CanonicalizationError, input_hash
from gateway.input_schema import UnsupportedSchema, request_fields
from gateway.job_store import JobStore
from gateway.jobs import Job, JobState, PaymentState, mip_status
from gateway.node_link import KodoclientError
from gateway.payments.backend import PaymentRefused
from kodosumi.errors import FieldViolation
from kodosumi.schema import violations

__all__ = ["StartJob", "service_router"]

_PURCHASER_MAX = 256
# The Masumi payment service takes a hex nonce of 14 to 26 characters as the purchaser id.
_MASUMI_PURCHASER = re.compile(r"^[0-9a-fA-F]{14,26}$")


class StartJob(BaseModel):
    model_config = ConfigDict(extra="ignore")
    identifier_from_purchaser: str = Field(min_length=1, max_length=_PURCHASER_MAX)
    input_data: dict[str, Any] = Field(default_factory=dict)


class ProvideInput(BaseModel):
    model_config = ConfigDict(extra="ignore")
    job_id: str = Field(min_length=1, max_length=128)
    status_id: str = Field(min_length=1, max_length=128)
    input_data: dict[str, Any]


def _start_answer(job: Job) -> dict[str, Any]:
    info = job.payment_info
    return {
        "id": job.job_id,
        "job_id": job.job_id,
        "status": "success",
        "blockchainIdentifier": info.get("blockchainIdentifier", ""),
        "payByTime": info.get("payByTime", 0),
        "submitResultTime": info.get("submitResultTime", 0),
        "unlockTime": info.get("unlockTime", 0),
        "externalDisputeUnlockTime": info.get("externalDisputeUnlockTime", 0),
        "agentIdentifier": info.get("agentIdentifier", ""),
        "sellerVKey": info.get("sellerVKey", ""),
        "identifierFromPurchaser": job.purchaser,
        "input_hash": job.input_hash,
        "amounts": info.get("amounts", []),
    }


def _groups(job: Job) -> list[dict[str, Any]]:
    groups = []
    for request in job.open_inputs:
        try:
            fields = request_fields(request.get("schema"), request.get("prompt", ""))
        except UnsupportedSchema:
            # The flow asks for something MIP-003 cannot draw: one free-text answer.
            fields = request_fields({"type": "string"}, request.get("prompt", ""))
        groups.append(
            {"id": request["request_id"], "title": request.get("prompt", ""), "input_data": fields}
        )
    return groups


def status_answer(job: Job) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": job.job_id,
        "job_id": job.job_id,
        "status": mip_status(job.state),
    }
    if job.state is JobState.AWAITING_INPUT and job.open_inputs:
        answer["id"] = job.open_inputs[0]["request_id"]
        answer["input_schema"] = {"input_groups": _groups(job)}
    if job.state is JobState.COMPLETED:
        answer["result"] = job.result
    if job.state is JobState.FAILED and job.reason:
        answer["reason"] = job.reason
    return answer


def _answer_value(request: dict[str, Any], input_data: dict[str, Any]) -> Any:
    schema = request.get("schema") or {}
    if schema.get("type", "object") == "object" and "properties" in schema:
        return input_data
    if "value" not in input_data:
        raise ApiError.bad_input([FieldViolation("input_data.value", "required")])
    return input_data["value"]


def service_router(
    service: Service,
    store: JobStore,
    driver: JobDriver,
    *,
    needs_masumi_ids: bool,
    availability: Callable[[Service], Awaitable[tuple[bool, str]]],
    sign: Callable[[str], str],
    purchasers: Mapping[str, str],
) -> APIRouter:
    config = service.config
    router = APIRouter(prefix=config.prefix, tags=[config.path])
    locks: dict[str, asyncio.Lock] = {}

    @router.get("/availability")
    async def get_availability() -> dict[str, Any]:
        ok, message = await availability(service)
        return {
            "status": "available" if ok else "unavailable",
            "type": "masumi-agent",
            "message": message,
        }

    @router.get("/input_schema")
    async def get_input_schema() -> dict[str, Any]:
        return {"input_data": service.fields}

    @router.get("/demo")
    async def get_demo() -> dict[str, Any]:
        if config.demo_input is None:
            raise ApiError(404, f"service {config.path!r} has no demo")
        return {"input": dict(config.demo_input), "output": {"result": config.demo_output}}

    @router.post("/start_job")
    async def start_job(
        body: StartJob, token: str | None = Header(default=None, max_length=512)
    ) -> JSONResponse:
        purchaser = body.identifier_from_purchaser
        buyer = ""
        if service.backend.name == "ledger":
            # The ledger charges an account: the purchaser proves which one with its API key.
            digest = hashlib.sha256((token or "").encode()).hexdigest()
            buyer = purchasers.get(digest, "") if token else ""
            if not buyer:
                raise ApiError(
                    401,
                    "a paid service: send your API key in the `token` header",
                    headers={"WWW-Authenticate": "token"},
                )
        if needs_masumi_ids and not _MASUMI_PURCHASER.match(purchaser):
            raise ApiError.bad_input(
                [FieldViolation("identifier_from_purchaser", "a hex string of 14 to 26 characters")]
            )
        found = violations(service.schema, body.input_data, "input_data") if service.schema else []
        if found:
            raise ApiError.bad_input(found, "input_data does not match the input schema")
        try:
            digest = input_hash(body.input_data, purchaser)
        except CanonicalizationError as e:
            raise ApiError.bad_input([FieldViolation("input_data", str(e))]) from None
        job, _ = await store.create(
            Job(str(uuid.uuid4()), config.path, purchaser, body.input_data, digest, buyer)
        )
        if job.input_hash != digest or job.buyer != buyer:
            raise ApiError(
                409,
                "identifier_from_purchaser is already used for a job with other input_data",
                [FieldViolation("identifier_from_purchaser", "already used")],
            )
        lock = locks.setdefault(job.job_id, asyncio.Lock())
        async with lock:
            job = await store.get(job.job_id) or job
            if job.payment is PaymentState.NONE:
                try:
                    requested = await service.backend.request(job, config)
                except PaymentRefused as e:
                    raise ApiError(e.status, str(e)) from None
                saved = await store.update(
                    job,
                    payment=PaymentState.REQUESTED,
                    payment_ref=requested.ref,
                    payment_info=requested.info,
                )
                job = saved or await store.get(job.job_id) or job
        locks.pop(job.job_id, None)
        driver.kick(job.job_id)
        return JSONResponse(_start_answer(job))

    @router.get("/status")
    async def get_status(job_id: str = Query(min_length=1, max_length=128)) -> dict[str, Any]:
        job = await store.get(job_id)
        if job is None or job.service != config.path:
            raise ApiError(404, f"no job {job_id!r}")
        return status_answer(job)

    @router.post("/provide_input")
    async def provide_input(body: ProvideInput) -> dict[str, Any]:
        job = await store.get(body.job_id)
        if job is None or job.service != config.path:
            raise ApiError(404, f"no job {body.job_id!r}")
        request = next((r for r in job.open_inputs if r["request_id"] == body.status_id), None)
        if job.state is not JobState.AWAITING_INPUT or request is None:
            raise ApiError(
                409,
                f"job {job.job_id} is {mip_status(job.state)}, not awaiting input "
                f"{body.status_id!r}",
            )
        value = _answer_value(request, body.input_data)
        schema = request.get("schema") or {}
        found = violations(schema, value, "input_data") if schema else []
        if found:
            raise ApiError.bad_input(found, "input_data does not match the requested input")
        try:
            await service.link.provide_input(job.execution_id, body.status_id, value)
        except KodoclientError as e:
            if e.code == grpc.StatusCode.INVALID_ARGUMENT:
                fields = [
                    FieldViolation(v.field.replace("value", "input_data", 1), v.description)
                    for v in e.violations
                ]
                raise ApiError.bad_input(fields, e.message) from None
            if e.code == grpc.StatusCode.FAILED_PRECONDITION:
                raise ApiError(409, e.message) from None
            raise ApiError(
                503, f"node unavailable: {e.code.name}", headers={"Retry-After": "5"}
            ) from None
        try:
            digest = input_hash(body.input_data, job.purchaser)
        except CanonicalizationError as e:
            raise ApiError.bad_input([FieldViolation("input_data", str(e))]) from None
        return {"input_hash": digest, "signature": sign(digest)}

    @router.get("/files/{job_id}/artifacts/{artifact_id}")
    async def get_artifact(job_id: str, artifact_id: str) -> Response:
        job = await store.get(job_id)
        found = await store.artifact(job_id, artifact_id) if job else None
        if job is None or job.service != config.path or found is None:
            raise ApiError(404, "no such artifact")
        _, media_type, data = found
        return Response(data, media_type=media_type or "application/octet-stream")

    @router.get("/files/{job_id}/{file_id}")
    async def get_file(job_id: str, file_id: str) -> Response:
        job = await store.get(job_id)
        if job is None or job.service != config.path or file_id not in job.result:
            raise ApiError(404, "no such file")
        try:
            data = await service.link.download(file_id)
        except KodoclientError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                raise ApiError(404, "no such file") from None
            raise ApiError(
                503, f"node unavailable: {e.code.name}", headers={"Retry-After": "5"}
            ) from None
        return Response(data, media_type="application/octet-stream")

    return router
