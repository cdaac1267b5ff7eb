"""The process-wide CrewAI listener and the attribution of CrewAI events to executions.

An executor process hosts many executions at once, and CrewAI has one event bus per
process. How the bus works in crewai 1.15.30 (`crewai/events/event_bus.py`) decides the
design:

- `emit(source, event)` first runs `_prepare_event` synchronously in the emitting thread:
  it sets `event.emission_sequence` from a per-context counter, the scope links
  (`parent_event_id`, `started_event_id`) and then calls the stream sinks registered in
  the emitting context (`crewai.events.stream_context`). Only then does it hand the event
  to the handlers: sync handlers run on a thread pool of 10 (in a copy of the emitter's
  context), except `LLMStreamChunkEvent`, whose handlers run inline.
- The emission counter restarts at 1 at every top-level crew or flow kickoff, and events
  emitted before it (environment detection, flow creation) carry numbers of the previous
  count, so `emission_sequence` alone can neither be gapless nor unique per execution.

So each execution gets a `CrewSession`, made current for the kickoff with a ContextVar
(which CrewAI copies into the threads and tasks it starts), plus a stream sink in the same
context. The sink runs in the emitting thread for every event of the execution and gives
it a gapless ordinal (its emission order; within one crew the same order as
`emission_sequence`), recorded by `event_id`. The one `KodosumiListener`, registered once
per process for every CrewAI event class, receives the event on the bus's pool, finds its
session and ordinal by `event_id`, and hands it to the session's reorder buffer.

An event emitted from a context that does not descend from the kickoff (a thread CrewAI
started without copying the context) has no ordinal; it is attributed by the identities
of the running kickoff (crew, flow, agent, task ids, learned as events go by) and
emitted when it arrives.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from crewai.events import BaseEventListener
from crewai.events.base_events import BaseEvent
from crewai.events.stream_context import add_stream_sink, reset_stream_sinks

from engine.crew import human, locks
from engine.crew.session import CrewSession

if TYPE_CHECKING:
    from crewai.events.event_bus import CrewAIEventsBus

    from engine.context import FlowContext

log = logging.getLogger(__name__)

_current_session: contextvars.ContextVar[CrewSession | None] = contextvars.ContextVar(
    "kodosumi_crew_session", default=None
)
# Threads of the bus itself: they must never wait in the sink (the pump may be waiting
# for an event that only they can deliver).
_BUS_THREAD_PREFIXES = ("CrewAISyncHandler", "CrewAIEventsLoop")


def current_session() -> CrewSession | None:
    return _current_session.get()


class _Registry:
    """Which session an event belongs to: by event id (exact) or by identity (fallback)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamps: dict[str, tuple[CrewSession, int]] = {}
        self._identities: dict[str, CrewSession] = {}

    def stamp(self, event_id: str, session: CrewSession, ordinal: int) -> None:
        with self._lock:
            self._stamps[event_id] = (session, ordinal)

    def take_stamp(self, event_id: str) -> tuple[CrewSession, int] | None:
        with self._lock:
            return self._stamps.pop(event_id, None)

    def remember(self, session: CrewSession, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._identities[key] = session

    def by_identity(self, keys: list[str]) -> CrewSession | None:
        with self._lock:
            for key in keys:
                session = self._identities.get(key)
                if session is not None:
                    return session
        return None

    def forget(self, session: CrewSession) -> None:
        with self._lock:
            for key in [k for k, s in self._identities.items() if s is session]:
                del self._identities[key]
            for event_id in [e for e, (s, _) in self._stamps.items() if s is session]:
                del self._stamps[event_id]


registry = _Registry()


def identity_keys(source: Any, event: Any) -> list[str]:
    """The identities an event names: its agent, task, crew, flow and fingerprint."""
    keys = []
    for prefix, value in (
        ("agent", getattr(event, "agent_id", None)),
        ("task", getattr(event, "task_id", None)),
        ("fingerprint", getattr(event, "source_fingerprint", None)),
        ("agent", getattr(getattr(event, "agent", None), "id", None)),
        ("task", getattr(getattr(event, "task", None), "id", None)),
        ("crew", getattr(getattr(event, "crew", None), "id", None)),
        ("flow", getattr(source, "flow_id", None) if hasattr(source, "flow_id") else None),
    ):
        if value:
            keys.append(f"{prefix}:{value}")
    return keys


def target_keys(target: Any) -> list[str]:
    """The identities of a crew or flow about to run (and of its agents and tasks)."""
    keys = []
    for obj, prefix in (
        (target, "crew"),
        *((agent, "agent") for agent in getattr(target, "agents", None) or ()),
        *((task, "task") for task in getattr(target, "tasks", None) or ()),
    ):
        if obj is None:
            continue
        if getattr(obj, "id", None):
            keys.append(f"{prefix}:{obj.id}")
        fingerprint = getattr(getattr(obj, "fingerprint", None), "uuid_str", None)
        if fingerprint:
            keys.append(f"fingerprint:{fingerprint}")
    flow_id = getattr(target, "flow_id", None) if hasattr(target, "_definition") else None
    if flow_id:
        keys.append(f"flow:{flow_id}")
    return keys


def _all_event_classes() -> set[type[BaseEvent]]:
    import crewai.events.event_types  # noqa: F401  (defines the event classes)

    found: set[type[BaseEvent]] = set()
    todo = [BaseEvent]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


class KodosumiListener(BaseEventListener):
    """Registered once per process; routes every CrewAI event to its execution's session."""

    def __init__(self) -> None:
        self._subscribed: set[type[BaseEvent]] = set()
        self._subscribe_lock = threading.Lock()
        self._bus: CrewAIEventsBus | None = None
        super().__init__()

    def setup_listeners(self, crewai_event_bus: CrewAIEventsBus) -> None:
        self._bus = crewai_event_bus
        self.subscribe_all()

    def subscribe_all(self) -> None:
        """Subscribe to every event class defined so far (the bus dispatches by exact class)."""
        for cls in _all_event_classes():
            self.subscribe(cls)

    def subscribe(self, cls: type[BaseEvent]) -> None:
        if cls in self._subscribed:
            return
        with self._subscribe_lock:
            if cls not in self._subscribed and self._bus is not None:
                self._bus.on(cls)(self.on_event)
                self._subscribed.add(cls)

    def on_event(self, source: Any, event: Any) -> None:
        # Runs on the bus's thread pool (or inline for stream chunks); must never raise,
        # and must hand every stamped event to its session, or the pump waits for it.
        stamp = registry.take_stamp(getattr(event, "event_id", ""))
        if stamp is not None:
            owner, ordinal = stamp
            owner.deliver(ordinal, (source, event))
            if str(getattr(event, "type", "")).endswith("_started"):
                # Agents and tasks built during the run (a crew inside a flow step) become
                # known, for events that arrive without a stamp later.
                registry.remember(owner, identity_keys(source, event))
            return
        try:
            from crewai.events.event_bus import is_replaying

            if is_replaying():
                return  # a checkpoint restore re-dispatching events that were streamed already
            session: CrewSession | None = _current_session.get() or registry.by_identity(
                identity_keys(source, event)
            )
            if session is not None and not session.closing:
                session.deliver_unordered((source, event))
        except Exception:
            log.exception("kodosumi: cannot route CrewAI event %r", getattr(event, "type", event))


_listener: KodosumiListener | None = None
_install_lock = threading.Lock()


def install() -> KodosumiListener:
    """Register the process-wide listener, the Flow human-input providers and the lock
    backend (once per process)."""
    global _listener
    if _listener is None:
        with _install_lock:
            if _listener is None:
                locks.install()
                _listener = KodosumiListener()
                human.install_flow_providers(current_session)
    return _listener


def _sink(source: Any, event: Any) -> None:
    """Stream sink: runs inside CrewAI's emit, in the emitting thread, for every event."""
    session = _current_session.get()
    if session is None or session.closing:
        return
    listener = _listener
    if listener is not None and type(event) not in listener._subscribed:
        # An event class defined after the listener was registered. The bus looks up the
        # handlers right after this sink returns, so subscribing now still delivers it.
        listener.subscribe(type(event))
    if not threading.current_thread().name.startswith(_BUS_THREAD_PREFIXES):
        session.throttle()
    registry.stamp(event.event_id, session, session.stamp())


def register_targets(session: CrewSession, *targets: Any) -> None:
    """Make the identities of crews or flows (and their agents and tasks) known as `session`'s,
    for events that reach the listener without an ordinal."""
    for target in targets:
        registry.remember(session, target_keys(target))


@contextmanager
def observe(ctx: FlowContext, *targets: Any) -> Iterator[CrewSession]:
    """Stream the CrewAI events of the code run inside as events of `ctx`'s execution.

    Also routes CrewAI's human input (tasks with `human_input=True`, Flow human feedback
    and `Flow.ask`) to `ctx.request_input`. Must be entered and left in the same thread.
    `targets` (crews, flows) are registered for the identity fallback.
    """
    listener = install()
    listener.subscribe_all()  # event classes imported since the last kickoff
    session = CrewSession(ctx)
    register_targets(session, *targets)
    session_token = _current_session.set(session)
    sink_token = add_stream_sink(_sink)
    provider_token = human.set_task_provider(session)
    session.start()
    try:
        yield session
    finally:
        try:
            human.reset_task_provider(provider_token)
            reset_stream_sinks(sink_token)
            _current_session.reset(session_token)
            session.close()  # every event stamped so far is emitted before the Result
        finally:
            registry.forget(session)
