"""Flow functions whose signatures the schema tests read (and the node tests run)."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field

from engine.context import FlowContext


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Request(BaseModel):
    topic: str
    depth: Annotated[int, Field(ge=1, description="How deep to dig")] = 2


class Window(TypedDict):
    start: int
    end: int


def greet(
    ctx: FlowContext,
    name: Annotated[str, "Who to greet"] = "world",
    times: int = 1,
    mode: Literal["loud", "soft"] = "soft",
    color: Color = Color.RED,
) -> str:
    """Greets someone, `times` times.

    The second paragraph is not the description."""
    text = f"hello {name}" * times
    return text.upper() if mode == "loud" else f"{text} in {color.value}"


def research(req: Request) -> str:
    return f"{req.topic} at depth {req.depth}"


def nested(req: Request, window: Window, tags: list[str] | None = None) -> dict[str, Any]:
    return {"topic": req.topic, "span": window["end"] - window["start"], "tags": tags}


def open_ended(topic: str, **extra: Any) -> dict[str, Any]:
    return {"topic": topic, **extra}


def whole(inputs: dict[str, Any]) -> dict[str, Any]:
    return inputs


def lone(data):  # type: ignore[no-untyped-def]
    return data


def needs(count: float) -> float:
    return count * 2
