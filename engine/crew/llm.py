"""Model names to CrewAI LLMs: `offline/...` is the offline model, anything else goes to CrewAI.

Importing this module does not import crewai; `make_llm` does.
"""

from __future__ import annotations

from typing import Any

OFFLINE_MODEL = "offline/scripted"
OFFLINE_PREFIX = "offline/"


def is_offline(model: str) -> bool:
    return model.strip().startswith(OFFLINE_PREFIX)


def make_llm(value: str | dict[str, Any] | None = None) -> Any:
    """A CrewAI LLM for a model name (`"openai/gpt-4o-mini"`) or a settings mapping
    (`{"model": ..., "temperature": ...}`); `None` means the offline model.

    `offline/<anything>` gives an `OfflineLLM` (no key, no network). Any other name is
    handed to `crewai.LLM`, which picks the provider from the name and reads the API key
    from the environment (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, ...), like CrewAI does.
    """
    settings: dict[str, Any] = (
        {"model": value} if isinstance(value, str) else dict(value or {"model": OFFLINE_MODEL})
    )
    model = str(settings.get("model") or "").strip()
    if not model:
        raise ValueError("an LLM needs a model name")
    settings["model"] = model
    if is_offline(model):
        from engine.crew.offline_llm import OfflineLLM

        return OfflineLLM(**settings)
    from crewai import LLM

    return LLM(**settings)
