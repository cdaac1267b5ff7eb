"""How a command shows that its stream is reconnecting, and that it is back: the two hooks
of `kodoclient.resume` turned into lines a person can read while `watch`, `run`, `alerts
--follow` or `watch-registry` wait for their node or registry to return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ReconnectNotice:
    """`say` prints one line; `peer` names the other side; `where` the position to resume
    from, read at the moment of the line ("seq 12")."""

    say: Callable[[str], None]
    peer: str
    where: Callable[[], str]

    def reconnecting(self, attempt: int, delay: float, cause: str) -> None:
        self.say(
            f"⟳ reconnecting to {self.peer} in {delay:.1f} s (attempt {attempt}; resuming "
            f"after {self.where()}): {cause}"
        )

    def resumed(self, attempts: int) -> None:
        tries = f"{attempts} attempt{'s' * (attempts != 1)}"
        self.say(f"✔ reconnected to {self.peer} after {tries}; resumed after {self.where()}")
