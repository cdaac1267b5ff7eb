"""How the gateway answers what it cannot do: JSON bodies with a `detail`, per-field `errors`
for bad input (400, as MIP-003 asks, never FastAPI's 422), and the status each failure means.

    400 bad JSON, wrong types, schema violations     404 unknown job or path
    409 provide_input when the job awaits no input   413 body over [gateway] max_body_bytes
    503 + Retry-After: payment backend or node down  502 the backend refused (configuration)

Anything unexpected is logged with its traceback and answered 500 without detail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.payments.backend import PaymentUnavailable
from kodosumi.errors import FieldViolation

__all__ = ["ApiError", "BodyLimit", "install"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[FieldViolation] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = headers or {}

    @classmethod
    def bad_input(cls, errors: Sequence[FieldViolation], detail: str = "") -> ApiError:
        return cls(400, detail or "invalid request", errors)


def _body(detail: str, errors: Sequence[FieldViolation] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "detail": detail}
    if errors:
        body["errors"] = [{"field": e.field, "message": e.description} for e in errors]
    return body


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            _body(error.detail, error.errors), status_code=error.status, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = []
        for item in error.errors():
            where = _location(item.get("loc", ()))
            message = str(item.get("msg", "invalid"))
            if item.get("type") == "json_invalid":
                where, message = "body", "malformed JSON"
            errors.append(FieldViolation(where, message))
        return JSONResponse(_body("invalid request", errors), status_code=400)

    @app.exception_handler(PaymentUnavailable)
    async def payment_down(request: Request, error: PaymentUnavailable) -> JSONResponse:
        retry = str(max(1, round(error.retry_after)))
        return JSONResponse(
            _body(f"payment backend unavailable: {error}"),
            status_code=503,
            headers={"Retry-After": retry},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            _body(str(error.detail)),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, error: RecursionError) -> JSONResponse:
        # JSON nested thousands deep: parsing or validating it runs out of stack.
        return JSONResponse(_body("the request is nested too deeply"), status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(_body("internal error"), status_code=500)


class BodyLimit:
    """413 for a request body over `limit` bytes, by its Content-Length or as it streams."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        # Read the body here (bounded) and hand it on whole: a limit raised from inside the
        # app's own reads would surface as its error, not as 413.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(_body(f"request body over {self.limit} bytes"), status_code=413)
        await response({"type": "http"}, _no_receive, send)


def _replay(chunks: list[bytes], last: Message | None, then: Receive) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if last is not None:
                return last
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await then()  # later reads wait for the client to go, as they would

    return receive


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
