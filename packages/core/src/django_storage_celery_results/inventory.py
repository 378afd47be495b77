"""What is stored, for people: iterate, read and delete results in bounded batches.

The command line (``cli.py``) and the admin browser share this module. It
never holds a whole listing: ``entries()`` yields what the storage's listing
gives (name, size, modified time) page by page as it is consumed; ``read()``
decodes the results of entries in parallel through the backend's thread pool,
a bounded window ahead of its consumer; ``delete()`` removes entries in
batches of the adapter's bulk delete. Nothing here reads an object that the
listing already describes well enough: a filter on age uses the listing's
modified time, and only a filter on what a result holds (state, task name)
reads it.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery.utils.time import maybe_iso8601, maybe_make_aware

from .backends import _result_problem
from .config import MAX_SIZE_SETTING
from .exceptions import InvalidStoredResult, StoredObjectTooLarge

if TYPE_CHECKING:
    from .backends import StorageBackend

TASK, GROUP, CHORD = "task", "group", "chord"
KINDS = (TASK, GROUP, CHORD)
#: What a result's summary shows, in order: (key of the stored dict, label).
SUMMARY_FIELDS = (
    ("status", "State"),
    ("name", "Task name"),
    ("worker", "Worker"),
    ("date_done", "Date done"),
    ("retries", "Retries"),
    ("queue", "Queue"),
)
#: Names handed to one delete_many (the adapter splits them as its store needs).
DELETE_BATCH = 1000


@dataclass(frozen=True)
class Entry:
    """One stored object of the backend, as the listing gives it."""

    name: str
    #: task, group or chord (bookkeeping of a chord being counted).
    kind: str
    #: The task or group id (for chord bookkeeping the chord's group id); None
    #: when the name cannot be read back (another program's object).
    id: str | None
    size: int | None
    modified: datetime.datetime | None


@dataclass(frozen=True)
class EntryPage:
    """One page of a listing: its entries and where the next one starts."""

    entries: list[Entry]
    #: Names the listing gave (some may not be results of this backend).
    listed: int
    #: Opaque; None on the last page.
    cursor: str | None


@dataclass
class Result:
    """An entry with what is stored in it, decoded."""

    entry: Entry
    #: The stored dict (status, result, traceback, date_done and, with
    #: result_extended, name, args, kwargs, worker, retries...); None when
    #: nothing is stored any more or it is not a result (see problem).
    meta: dict[str, Any] | None = None
    #: Why the object is not a readable result, naming no payload.
    problem: str | None = None
    #: Bytes stored (from the read where the listing did not tell).
    size: int | None = None

    @property
    def id(self) -> str | None:
        return self.entry.id

    @property
    def state(self) -> str | None:
        if self.meta is None:
            return "UNREADABLE" if self.problem else None
        return str(self.meta.get("status"))

    @property
    def task_name(self) -> str | None:
        name = (self.meta or {}).get("name")
        return None if name is None else str(name)

    @property
    def worker(self) -> str | None:
        worker = (self.meta or {}).get("worker")
        return None if worker is None else str(worker)

    @property
    def date_done(self) -> datetime.datetime | None:
        done = (self.meta or {}).get("date_done")
        try:
            when = maybe_iso8601(done) if done else None
        except (TypeError, ValueError):
            return None
        return None if when is None else maybe_make_aware(when, datetime.timezone.utc)

    @property
    def when(self) -> datetime.datetime | None:
        """When the result was last written: the listing's time, else date_done."""
        return self.entry.modified or self.date_done


class Inventory:
    """The stored results of one backend."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self.adapter = backend.adapter
        self.layout = backend.layout
        self._prefixes = {
            backend.task_keyprefix: TASK,
            backend.group_keyprefix: GROUP,
            backend.chord_keyprefix: CHORD,
        }

    # -- listing -----------------------------------------------------------------

    def kind_of(self, name: str) -> str | None:
        for prefix, kind in self._prefixes.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                return kind
        return None

    def entry(self, name: str, size: int | None = None, modified: datetime.datetime | None = None) -> Entry:
        kind = self.kind_of(name)
        if kind is None:
            raise ValueError(f"{name!r} is not a name of this backend")
        parsed = self.layout.parse(name.split("~", 1)[0] if kind == CHORD else name)
        return Entry(name, kind, parsed[1] if parsed else None, size, modified)

    def entries(self, kinds: Iterable[str] = (TASK,)) -> Iterator[Entry]:
        """The stored objects of these kinds, in the storage's listing order,
        listed page by page as the caller consumes them."""
        prefixes = tuple(prefix for prefix, kind in self._prefixes.items() if kind in set(kinds))
        if not prefixes:
            return
        # one listing pass with the longest common prefix: a store lists just those names
        common = os.path.commonprefix(list(prefixes))  # noqa: RUF071  (names, not paths)
        for item in self.adapter.list(lambda name: name.startswith(prefixes), prefix=common):
            yield self.entry(item.name, item.size, item.modified)

    def page(self, limit: int, cursor: str | None = None, kind: str = TASK, id_prefix: str = "") -> EntryPage:
        """At most limit entries of one kind from one listing request (on an
        object store), from the cursor of the previous page, in name order
        (the id's order: a store lists names, not dates); id_prefix, the start
        of a plain id, narrows the listing to the names it starts."""
        prefix = {TASK: self.backend.task_keyprefix, GROUP: self.backend.group_keyprefix}[kind]
        listed = self.adapter.list_page(prefix + id_prefix, limit, cursor)
        entries = [self.entry(item.name, item.size, item.modified) for item in listed.entries]
        # chord bookkeeping (names with ~) and other programs' objects have no id here
        return EntryPage(
            [entry for entry in entries if entry.id is not None], len(listed.entries), listed.cursor
        )

    def task_entry(self, task_id: str, group: bool = False) -> Entry:
        """The entry where a task's (or group's) result would be stored; nothing is read."""
        prefix = self.backend.group_keyprefix if group else self.backend.task_keyprefix
        name = self.layout.name(prefix, task_id)
        return Entry(name, GROUP if group else TASK, task_id, None, None)

    # -- reading -----------------------------------------------------------------

    @property
    def window(self) -> int:
        """Reads in flight at once: the backend's pool, or one at a time where reads do not overlap."""
        if not self.adapter.parallel_reads:
            return 1
        return max(1, min(self.backend.concurrency, self.adapter.max_concurrency or self.backend.concurrency))

    def read(self, entries: Iterable[Entry]) -> Iterator[Result]:
        """The results of the entries, in their order, read at most ``window``
        ahead of the consumer (stop consuming and no more reads are made);
        an object deleted since the listing is skipped."""
        if self.window == 1:
            for entry in entries:
                result = self.read_one(entry)
                if result is not None:
                    yield result
            return
        pool = self.backend._pool()
        pending: collections.deque[Future[Result | None]] = collections.deque()
        source = iter(entries)
        try:
            for entry in itertools.islice(source, self.window):
                pending.append(pool.submit(self.read_one, entry))
            while pending:
                result = pending.popleft().result()
                for entry in itertools.islice(source, 1):
                    pending.append(pool.submit(self.read_one, entry))
                if result is not None:
                    yield result
        finally:
            for future in pending:
                future.cancel()

    def read_one(self, entry: Entry) -> Result | None:
        """The decoded result of one entry; None when nothing is stored under its name."""
        backend = self.backend
        try:
            stored = self.adapter.read(entry.name)
        except StoredObjectTooLarge as exc:
            size = exc.size if exc.size is not None else entry.size
            return Result(
                entry, None, f"it is larger than {MAX_SIZE_SETTING}, {backend.max_size} bytes", size
            )
        if stored is None or not stored.data:
            return None
        size = entry.size if entry.size is not None else len(stored.data)
        try:
            payload = backend._payload(entry.name, stored)
            meta = backend.decode(payload)
        except InvalidStoredResult as exc:
            return Result(entry, None, _reason(str(exc)), size)
        except StoredObjectTooLarge:
            return Result(entry, None, backend.expands_past_limit(), size)
        except Exception as exc:
            return Result(entry, None, f"it does not decode ({type(exc).__name__})", size)
        if entry.kind == TASK:
            problem = _result_problem(meta, entry.id or "")
            if problem:
                return Result(entry, None, problem, size)
        elif not isinstance(meta, dict):
            return Result(entry, None, f"it holds a {type(meta).__name__}", size)
        return Result(entry, meta, None, size)

    def raw(self, entry: Entry) -> bytes | None:
        """The stored bytes of an entry as the storage holds them."""
        stored = self.adapter.read(entry.name)
        return None if stored is None else stored.data

    # -- deleting ----------------------------------------------------------------

    def delete(self, entries: Iterable[Entry], batch: int = DELETE_BATCH) -> Iterator[list[Entry]]:
        """Delete the entries in batches, yielding each batch once it is gone,
        so a caller stopped half-way knows exactly what was deleted."""
        iterator = iter(entries)
        while chunk := list(itertools.islice(iterator, batch)):
            self.backend.delete_names([entry.name for entry in chunk])
            yield chunk

    def where(self, entry: Entry) -> str:
        """Where an entry is stored, without credentials."""
        key = getattr(self.adapter, "key", None)
        url = getattr(self.adapter, "url", None)
        if callable(key) and callable(url):  # an object store: the full URL of the key
            return f"{url()}{entry.name}"
        try:
            return self.adapter.storage.path(entry.name)  # a folder: the file's path
        except (NotImplementedError, AttributeError, ValueError):
            return f"{entry.name} in {self.adapter.describe()}"


def _reason(message: str) -> str:
    """The problem part of an InvalidStoredResult's message (it names no payload)."""
    return message.rsplit("is not a Celery result: ", 1)[-1]
