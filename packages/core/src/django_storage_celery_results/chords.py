"""Chords without polling, on storages that write conditionally.

Celery counts a chord's finished header tasks with an atomic counter where
the store has one, and otherwise polls with ``celery.chord_unlock``. Here a
per-chord state object (``chord-unlock-<group id>``) holds the chord size and
the *set* of finished header task ids; each finished task adds its id with a
version-matched write. A set, not a counter: a redelivered or retried header
task adds nothing. The single write that completes the set is the one whose
caller sends the callback, so it is sent exactly once however many workers
race.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .adapters import CREATE, PutMode, Update
from .codec import unlabel
from .exceptions import VersionMismatch

if TYPE_CHECKING:
    from .backends import StorageBackend

logger = logging.getLogger(__name__)

#: Conflicting writers retry this often before the chord is failed.
MAX_ROUNDS = 40
#: Jittered exponential backoff between conflicting rounds, in seconds.
BACKOFF_START = 0.002
BACKOFF_CAP = 0.25


@dataclass
class ChordState:
    size: int | None = None
    done: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        return self.size is not None and len(self.done) >= self.size

    def dump(self) -> dict[str, Any]:
        return {"size": self.size, "done": sorted(self.done)}

    @classmethod
    def load(cls, meta: dict[str, Any]) -> ChordState:
        return cls(meta.get("size"), set(meta.get("done") or ()))


class ChordConflict(Exception):
    """The chord state kept changing under every conditional write."""


class ChordStates:
    """Reads and conditionally updates the per-chord state objects."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend

    def start(self, group_id: str, size: int) -> None:
        """Record the size when the chord is applied (before any header task runs)."""
        self.update(group_id, lambda state: _with_size(state, size))

    def set_size(self, group_id: str, size: int) -> None:
        """Correct the size where Celery counts a nested header differently.

        Celery calls this before it sends the last header task, so the
        correction never completes a chord by itself.
        """
        self.update(group_id, lambda state: _with_size(state, size))

    def record(self, group_id: str, task_id: str) -> bool:
        """Add a finished header task; True when this call completed the set."""

        def add(state: ChordState | None) -> ChordState | None:
            state = state or ChordState()
            if task_id in state.done:
                return None  # redelivered: already counted
            return ChordState(state.size, state.done | {task_id})

        _before, after = self.update(group_id, add)
        # add() grows the set by one per write, so only one write completes it
        return after is not None and after.complete and len(after.done) == after.size

    def update(
        self, group_id: str, change: Callable[[ChordState | None], ChordState | None]
    ) -> tuple[ChordState | None, ChordState | None]:
        """Apply change to the stored state with conditional writes until one wins.

        Returns the state before and the state written (None: nothing written).
        """
        backend = self.backend
        name = backend.get_key_for_chord(group_id)
        for attempt in range(MAX_ROUNDS):
            stored = backend.adapter.read(name)
            before = (
                ChordState.load(backend.decode(unlabel(stored.data, stored.content_encoding)))
                if stored
                else None
            )
            after = change(before)
            if after is None:
                return before, None
            mode: PutMode = CREATE if stored is None or stored.version is None else Update(stored.version)
            try:
                backend._put(name, backend.encode(after.dump()), mode)
            except VersionMismatch:
                time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_START * 2**attempt)))
                continue
            return before, after
        raise ChordConflict(f"the state of chord {group_id} changed under {MAX_ROUNDS} conditional writes")

    def forget(self, group_id: str) -> None:
        self.backend.delete(self.backend.get_key_for_chord(group_id))


def _with_size(state: ChordState | None, size: int) -> ChordState | None:
    state = state or ChordState()
    if state.size == size:
        return None
    return ChordState(size, state.done)
