"""Text cut to a size: what a daemon repeats of what others sent it (error details, alert
messages naming a flow's failure) never carries megabytes along."""

from __future__ import annotations


def bounded(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}… ({len(text) - limit + 40} more characters)"
