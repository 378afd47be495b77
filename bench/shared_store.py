"""An in-memory object store that several processes share, counting requests
the way the counting proxy counts S3's.

One process (a ``multiprocessing`` manager) holds the objects; every other
process reaches them through ``SharedStoreAdapter``, a ``StorageAdapter`` whose
calls go to that process. It honours create-only and version-matched writes
atomically (one lock), and counts what S3 would bill: a listing is one
request per page of 1,000 names, a bulk delete one per 1,000 names. Reads of
the names given to ``set_join`` (the final join's) are counted apart, as the
bench does on the emulators. Emulators scan their whole bucket for a listing;
this lists a prefix by bisecting its sorted names, so 100,000 header tasks
cost the requests they make, not the emulator's scans.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.managers import BaseManager
from typing import Any

from django_storage_celery_results import adapters
from django_storage_celery_results.backends import StorageBackend
from django_storage_celery_results.exceptions import VersionMismatch

PAGE = 1000
JOIN = "join GET"


class CountingStore:
    """The objects and the counts; lives in the manager's process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[str, tuple[bytes, str]] = {}
            #: The names in order, for listings by prefix without a scan.
            self.names: list[str] = []
            self.join_names: frozenset[str] = frozenset()
            self.counts: Counter[str] = Counter()
            self.listed_names = 0
            self.listed_bytes = 0

    def set_join(self, names: Iterable[str]) -> None:
        """Reads of these names are the final join's: counted apart."""
        with self.lock:
            self.join_names = frozenset(names)

    def take_counts(self) -> tuple[dict[str, int], int, int]:
        """(requests by kind, names listed, bytes of names listed) since the last take; zeroed."""
        with self.lock:
            taken = (dict(self.counts), self.listed_names, self.listed_bytes)
            self.counts.clear()
            self.listed_names = self.listed_bytes = 0
            return taken

    def present(self, names: Iterable[str]) -> int:
        """How many of these names are stored (the bench's check, not a request)."""
        with self.lock:
            return sum(name in self.objects for name in names)

    def read(self, name: str) -> tuple[bytes, str] | None:
        with self.lock:
            self.counts[JOIN if name in self.join_names else "GET"] += 1
            return self.objects.get(name)

    def put(self, name: str, data: bytes, create: bool, version: str | None) -> str | None:
        """Store data; the new version, or None when the create or the version match lost."""
        with self.lock:
            self.counts["PUT"] += 1
            current = self.objects.get(name)
            if (create and current is not None) or (
                version is not None and (current is None or current[1] != version)
            ):
                return None
            new_version = uuid.uuid4().hex
            if current is None:
                bisect.insort(self.names, name)
            self.objects[name] = (data, new_version)
            return new_version

    def delete_many(self, names: list[str]) -> None:
        with self.lock:
            self.counts["DELETE"] += max(1, -(-len(names) // PAGE))
            for name in names:
                if self.objects.pop(name, None) is not None:
                    del self.names[bisect.bisect_left(self.names, name)]

    def list_names(self, prefix: str) -> list[str]:
        with self.lock:
            start = bisect.bisect_left(self.names, prefix)
            following = (self.names[index] for index in range(start, len(self.names)))
            found = list(itertools.takewhile(lambda name: name.startswith(prefix), following))
            self.counts["LIST"] += max(1, -(-len(found) // PAGE))
            self.listed_names += len(found)
            self.listed_bytes += sum(len(name) for name in found)
            return found


class _StoreServer(BaseManager):
    pass


_StoreServer.register("CountingStore", CountingStore)


@contextmanager
def shared_store() -> Iterator[CountingStore]:
    """A CountingStore in a process of its own; what it yields (a proxy) can be
    handed to processes forked from this one."""
    with _StoreServer() as server:
        yield server.CountingStore()  # type: ignore[attr-defined]


class SharedStoreAdapter(adapters.StorageAdapter):
    """A StorageAdapter over a CountingStore (or its proxy in another process)."""

    conditional_writes = True
    prefix_listing = True

    def __init__(self, store: CountingStore) -> None:
        self.store = store

    def describe(self) -> str:
        return "a shared in-memory store"

    def read(self, name: str) -> adapters.StoredObject | None:
        found = self.store.read(name)
        return adapters.StoredObject(*found) if found else None

    def put(
        self,
        name: str,
        data: bytes,
        mode: adapters.PutMode = adapters.OVERWRITE,
        content: adapters.Content = adapters.Content(),
    ) -> str | None:
        version = mode.version if isinstance(mode, adapters.Update) else None
        stored = self.store.put(name, bytes(data), mode == adapters.CREATE, version)
        if stored is None:
            raise VersionMismatch(name)
        return stored

    def delete(self, name: str) -> None:
        self.store.delete_many([name])

    def delete_many(self, names: Iterable[str]) -> None:
        self.store.delete_many(list(names))

    def list_names(self, prefix: str = "") -> Iterator[str]:
        return iter(self.store.list_names(prefix))

    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[adapters.ListedObject]:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (adapters.ListedObject(name, now) for name in self.list_names(prefix) if wanted(name))


@contextmanager
def backends_on(store: CountingStore) -> Iterator[None]:
    """Every StorageBackend of this process uses the shared store while within."""
    adapter = SharedStoreAdapter(store)
    original: Any = StorageBackend.adapter
    StorageBackend.adapter = property(lambda self: adapter)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        StorageBackend.adapter = original  # type: ignore[method-assign]
