"""Chords without polling, on storages that write conditionally.

Celery counts a chord's finished header tasks with an atomic counter where
the store has one, and otherwise polls with ``celery.chord_unlock``. Here the
storage counts the *set* of finished header task ids, not a number, so a
redelivered or retried header task adds nothing, and a create-only or
version-matched write elects the one caller that sends the callback: it is
sent exactly once however many workers race. Two shapes, by what the store
does cheaply:

* ``ChordMarkers`` (object stores, whose listing of a prefix costs one
  request): each finished header task writes a marker named after it under
  the chord's prefix and lists that prefix; whoever sees the set complete
  tries to create the ``fired`` marker, and the one create that succeeds
  sends the callback. No writer ever waits for another: 3 requests per
  header task (its result, its marker, one listing), however many workers.
* ``ChordState`` objects (a local folder, where listing means reading the
  whole directory but a version-matched write is a lock held for
  microseconds): one state object per chord holds the size and the set;
  each header task adds its id with a version-matched write, retrying with
  jittered backoff when another writer won.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .adapters import CREATE, OVERWRITE, PutMode, Update
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
    """One state object per chord, updated by version-matched writes."""

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


class ChordMarkers:
    """One marker per finished header task, counted from one listing."""

    FIRED = "fired"
    DONE = "done-"
    #: The size as the chord was applied, then as Celery corrected it.
    SIZES = ("size1-", "size2-")

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend

    def _mark(self, group_id: str, member: str, mode: PutMode = OVERWRITE) -> None:
        backend = self.backend
        name = backend.layout.member(backend.chord_keyprefix, group_id, member)
        backend._put(name, b"{}", mode)

    def start(self, group_id: str, size: int) -> None:
        self._mark(group_id, f"{self.SIZES[0]}{size}")

    def set_size(self, group_id: str, size: int) -> None:
        self._mark(group_id, f"{self.SIZES[1]}{size}")

    def record(self, group_id: str, task_id: str) -> bool:
        backend = self.backend
        self._mark(group_id, self.DONE + backend.layout.encode(task_id))
        members = self._members(group_id)
        sizes = [
            int(member[len(kind) :])
            for kind in reversed(self.SIZES)
            for member in members
            if member.startswith(kind) and member[len(kind) :].isdigit()
        ]
        done = sum(member.startswith(self.DONE) for member in members)
        if not sizes or done < sizes[0] or self.FIRED in members:
            return False
        try:
            self._mark(group_id, self.FIRED, CREATE)
        except VersionMismatch:
            return False  # another finisher saw the set complete too, and won
        return True

    def _members(self, group_id: str) -> list[str]:
        backend = self.backend
        prefix = backend.layout.members(backend.chord_keyprefix, group_id)
        return [item.name[len(prefix) :] for item in backend.adapter.list(prefix=prefix)]

    def forget(self, group_id: str) -> None:
        backend = self.backend
        prefix = backend.layout.members(backend.chord_keyprefix, group_id)
        backend.adapter.delete_many([prefix + member for member in self._members(group_id)])
