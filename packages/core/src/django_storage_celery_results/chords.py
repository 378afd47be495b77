"""Chords without polling, on storages that write conditionally.

Celery counts a chord's finished header tasks with an atomic counter where
the store has one, and otherwise polls with ``celery.chord_unlock``. Here the
storage counts the *set* of finished header task ids, not a number, so a
redelivered or retried header task adds nothing, and a create-only or
version-matched write elects the one caller that sends the callback: it is
sent exactly once however many workers race. Two shapes, by what the store
does cheaply:

* ``MarkerCounter`` (object stores, whose listing of a prefix costs one
  request): each finished header task writes a marker named after it under
  the chord's prefix and lists that prefix; whoever sees the set complete
  tries to create the ``fired`` marker, and the one create that succeeds
  sends the callback. No writer ever waits for another: 3 requests per
  header task (its result, its marker, one listing), however many workers.
* ``StateObjectCounter`` (a local folder, where listing means reading the
  whole directory but a version-matched write is a lock held for
  microseconds): one state object per chord holds the size and the set;
  each header task adds its id with a version-matched write, retrying with
  jittered backoff when another writer won.

Both reach the storage only through ``ChordStore``, the small public face
of the backend (named objects read decoded and written encoded, listed and
deleted), and name their objects through ``ChordKeys``.
"""

from __future__ import annotations

import abc
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .adapters import CREATE, OVERWRITE, PutMode, Update
from .exceptions import VersionMismatch
from .keys import KeyLayout

logger = logging.getLogger(__name__)

#: Conflicting writers retry this often before the chord is failed.
MAX_ROUNDS = 40
#: Jittered exponential backoff between conflicting rounds, in seconds.
BACKOFF_START = 0.002
BACKOFF_CAP = 0.25


@dataclass(frozen=True)
class DecodedObject:
    """A stored object's decoded value and the version a conditional write matches."""

    value: Any
    version: str | None


class ChordStore(Protocol):
    """What chord counting needs of the backend."""

    def read_decoded(self, name: str) -> DecodedObject | None:
        """The decoded object stored under name, or None."""

    def write_encoded(self, name: str, value: Any, mode: PutMode = OVERWRITE) -> str | None:
        """Encode value and store it under name; VersionMismatch when mode's condition fails."""

    def list_names(self, prefix: str) -> list[str]:
        """The names of the stored objects that start with prefix."""

    def delete_names(self, names: Iterable[str]) -> None:
        """Delete these objects; missing ones are not an error."""


@dataclass(frozen=True)
class ChordKeys:
    """The names of one chord's bookkeeping objects."""

    layout: KeyLayout
    prefix: str

    def state(self, group_id: str) -> str:
        return self.layout.name(self.prefix, group_id)

    def members(self, group_id: str) -> str:
        return self.layout.members(self.prefix, group_id)

    def member(self, group_id: str, member: str) -> str:
        return self.layout.member(self.prefix, group_id, member)

    def task(self, task_id: str) -> str:
        return self.layout.encode(task_id)


class ChordCounter(abc.ABC):
    """Counts a chord's finished header tasks and elects the one that fires it."""

    def __init__(self, store: ChordStore, keys: ChordKeys) -> None:
        self.store = store
        self.keys = keys

    @abc.abstractmethod
    def start(self, group_id: str, size: int) -> None:
        """Record the size when the chord is applied (before any header task runs)."""

    @abc.abstractmethod
    def set_size(self, group_id: str, size: int) -> None:
        """Correct the size where Celery counts a nested header differently.

        Celery calls this before it sends the last header task, so the
        correction never completes a chord by itself.
        """

    @abc.abstractmethod
    def record(self, group_id: str, task_id: str) -> bool:
        """Add a finished header task; True for exactly one caller: the one that fires."""

    @abc.abstractmethod
    def forget(self, group_id: str) -> None:
        """Remove the chord's bookkeeping."""


@dataclass
class ChordProgress:
    """What the state object of a chord holds: its size and the finished header ids."""

    size: int | None = None
    done: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        return self.size is not None and len(self.done) >= self.size

    def dump(self) -> dict[str, Any]:
        return {"size": self.size, "done": sorted(self.done)}

    @classmethod
    def load(cls, meta: dict[str, Any]) -> ChordProgress:
        return cls(meta.get("size"), set(meta.get("done") or ()))


class ChordConflict(Exception):
    """The chord state kept changing under every conditional write."""


class StateObjectCounter(ChordCounter):
    """One state object per chord, updated by version-matched writes."""

    def start(self, group_id: str, size: int) -> None:
        self.update(group_id, lambda progress: _with_size(progress, size))

    def set_size(self, group_id: str, size: int) -> None:
        self.update(group_id, lambda progress: _with_size(progress, size))

    def record(self, group_id: str, task_id: str) -> bool:
        def add(progress: ChordProgress | None) -> ChordProgress | None:
            progress = progress or ChordProgress()
            if task_id in progress.done:
                return None  # redelivered: already counted
            return ChordProgress(progress.size, progress.done | {task_id})

        after = self.update(group_id, add)
        # add() grows the set by one per write, so only one write completes it
        return after is not None and after.complete and len(after.done) == after.size

    def update(
        self, group_id: str, change: Callable[[ChordProgress | None], ChordProgress | None]
    ) -> ChordProgress | None:
        """Apply change to the stored progress with conditional writes until one wins.

        Returns the progress written, or None when change wrote nothing.
        """
        name = self.keys.state(group_id)
        for attempt in range(MAX_ROUNDS):
            stored = self.store.read_decoded(name)
            after = change(ChordProgress.load(stored.value) if stored else None)
            if after is None:
                return None
            mode: PutMode = CREATE if stored is None or stored.version is None else Update(stored.version)
            try:
                self.store.write_encoded(name, after.dump(), mode)
            except VersionMismatch:
                time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_START * 2**attempt)))
                continue
            return after
        raise ChordConflict(f"the state of chord {group_id} changed under {MAX_ROUNDS} conditional writes")

    def forget(self, group_id: str) -> None:
        self.store.delete_names([self.keys.state(group_id)])


def _with_size(progress: ChordProgress | None, size: int) -> ChordProgress | None:
    progress = progress or ChordProgress()
    if progress.size == size:
        return None
    return ChordProgress(size, progress.done)


class MarkerCounter(ChordCounter):
    """One marker per finished header task, counted from one listing."""

    FIRED = "fired"
    DONE = "done-"
    #: The size as the chord was applied, then as Celery corrected it.
    SIZES = ("size1-", "size2-")

    def _mark(self, group_id: str, member: str, mode: PutMode = OVERWRITE) -> None:
        self.store.write_encoded(self.keys.member(group_id, member), {}, mode)

    def start(self, group_id: str, size: int) -> None:
        self._mark(group_id, f"{self.SIZES[0]}{size}")

    def set_size(self, group_id: str, size: int) -> None:
        self._mark(group_id, f"{self.SIZES[1]}{size}")

    def record(self, group_id: str, task_id: str) -> bool:
        self._mark(group_id, self.DONE + self.keys.task(task_id))
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
        prefix = self.keys.members(group_id)
        return [name[len(prefix) :] for name in self.store.list_names(prefix)]

    def forget(self, group_id: str) -> None:
        prefix = self.keys.members(group_id)
        self.store.delete_names([prefix + member for member in self._members(group_id)])


def counter_for(store: ChordStore, keys: ChordKeys, prefix_listing: bool) -> ChordCounter:
    """Markers where listing a prefix is one request (object stores), else one state object."""
    return (MarkerCounter if prefix_listing else StateObjectCounter)(store, keys)
