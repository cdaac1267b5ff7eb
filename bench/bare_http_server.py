"""The baseline of the gateway benchmark: a bare uvicorn + FastAPI process answering
`POST /start_job` and `GET /status` with fixed JSON (no store, no payment, no node), so the
gateway's figures read as a ratio to what the HTTP stack alone costs on this machine.

    python -m bench.bare_http_server     # prints: listening on http://127.0.0.1:PORT
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field


class StartJob(BaseModel):
    identifier_from_purchaser: str = Field(min_length=1)
    input_data: dict[str, Any] = Field(default_factory=dict)


def app() -> FastAPI:
    api = FastAPI()

    @api.post("/start_job")
    async def start_job(body: StartJob) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "identifierFromPurchaser": body.identifier_from_purchaser}

    @api.get("/status")
    async def status(job_id: str) -> dict[str, Any]:
        return {"id": job_id, "status": "completed", "result": "done"}

    return api


async def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app(), log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn has no event)
        await asyncio.sleep(0.01)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main())
