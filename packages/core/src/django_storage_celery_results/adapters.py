"""The contract between the backend and one Django Storage.

An adapter offers a handful of capabilities over a single storage instance.
The backend asks what it can do and picks the cheapest correct algorithm.
Vocabulary borrowed from object stores: a put either overwrites, creates
(fails if present) or updates (fails unless the stored version matches).
"""

from __future__ import annotations

import abc
import datetime
import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from django.core.files.storage import Storage

from .exceptions import ImproperlyConfigured, InvalidResultId
from .redact import Redactor

OVERWRITE: Literal["overwrite"] = "overwrite"
CREATE: Literal["create"] = "create"

T = TypeVar("T")

#: HTTP statuses of transient conditions worth another try: timeouts,
#: throttling, a server or gateway hiccup.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Update:
    """Write only if the stored object still has this version."""

    version: str


PutMode = Literal["overwrite", "create"] | Update


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    version: str | None
    #: The HTTP Content-Encoding the object was labelled with (content_labels).
    content_encoding: str | None = None


@dataclass(frozen=True)
class ListedObject:
    name: str
    #: Timezone-aware; None where the storage cannot tell (no get_modified_time).
    modified: datetime.datetime | None


@dataclass(frozen=True)
class Content:
    """How a payload should be labelled where the storage can say so."""

    content_type: str | None = None
    content_encoding: str | None = None


class StorageAdapter(abc.ABC):
    #: True when put() honours CREATE and Update atomically.
    conditional_writes: bool = False
    #: True when reading several objects at once from threads is faster than
    #: one after another (network stores); false for local disks, where a
    #: read takes microseconds and thread hand-offs would dominate.
    parallel_reads: bool = True
    #: The most requests the adapter's client can run at once, if limited.
    max_concurrency: int | None = None
    #: True when list(prefix=...) asks the store for just the names with that
    #: prefix (object stores), so its cost does not grow with the other objects.
    prefix_listing: bool = False
    #: True when put() labels objects with Content and read() returns the
    #: content encoding: compressed results are then stored as plain
    #: compressed bytes with a Content-Encoding, readable in a console.
    content_labels: bool = False

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        #: Hides the storage's credentials in every text about it (redact.py).
        self.redact = Redactor(storage)

    @abc.abstractmethod
    def read(self, name: str) -> StoredObject | None:
        """The object's bytes and version, or None when it does not exist."""

    @abc.abstractmethod
    def put(
        self, name: str, data: bytes, mode: PutMode = OVERWRITE, content: Content = Content()
    ) -> str | None:
        """Store data under name; return the new version where known.

        Raises VersionMismatch when a CREATE finds the object or an Update
        finds another version. Only called with those modes when
        conditional_writes is True.
        """

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove the object; a missing object is not an error."""

    def delete_many(self, names: Iterable[str]) -> None:
        for name in names:
            self.delete(name)

    @abc.abstractmethod
    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[ListedObject]:
        """The objects directly under the storage root whose names start with
        prefix and are wanted, with modified times. Names are filtered before
        any per-object metadata is fetched, so unrelated objects cost nothing
        extra."""

    def remove_leftovers(self, older_than: datetime.datetime) -> int:
        """Delete debris of interrupted writes older than the given time.

        Called by cleanup(); adapters that never leave any keep this no-op.
        Returns how many objects were removed.
        """
        return 0

    def is_retryable(self, exc: BaseException) -> bool:
        """True for transient errors worth another try (throttling, timeouts)."""
        return isinstance(exc, (ConnectionError, TimeoutError))

    def describe(self) -> str:
        """Where results go, for logs and checks; never includes credentials."""
        storage = self.storage
        host = getattr(storage, "host", None)
        location = getattr(storage, "location", None) or getattr(storage, "root_path", None)
        on = f" on {host!s}" if isinstance(host, str) and host else ""
        at = f" at {location!s}" if location else ""
        return self.redact(f"{type(storage).__name__}{on}{at}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class ObjectStoreAdapter(StorageAdapter):
    """What every object-store adapter shares: flat keys under the prefix of
    the storage's location, conditional writes, content labels and listings
    by prefix. A subclass brings the storage's client and speaks its API."""

    conditional_writes = True
    content_labels = True
    prefix_listing = True

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        folder = posixpath.normpath(getattr(storage, "location", None) or ".").strip("/")
        #: The key prefix of the location: "" at the bucket root, else "folder/".
        self.prefix = "" if folder in ("", ".") else f"{folder}/"

    def key(self, name: str) -> str:
        """The key of a result name under the prefix; a name is always one key component."""
        if not name or "/" in name or name in (".", ".."):
            raise InvalidResultId(f"result name {name!r} is not a single key component")
        return self.prefix + name

    def listed(
        self, objects: Iterable[tuple[str, datetime.datetime]], wanted: Callable[[str], bool]
    ) -> Iterator[ListedObject]:
        """The wanted results among (key, modified) pairs the store listed under the prefix."""
        for key, modified in objects:
            name = key[len(self.prefix) :]
            if name and wanted(name):
                yield ListedObject(name, modified)


def required_setting(value: str | None, store: str, what: str, argument: str, setting: str) -> str:
    """A storage setting the adapter cannot work without, or an error naming where to set it."""
    if not value:
        raise ImproperlyConfigured(
            f"{store} result storage has no {what}: "
            f"set CELERY_RESULT_STORAGE_CONFIG[{argument!r}] or {setting}"
        )
    return value


def in_batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """The items in lists of at most size: what one bulk request of a store takes."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def not_deleted(
    store: str, adapter: StorageAdapter, failed: Sequence[tuple[str, object]], attempted: int
) -> OSError:
    """The error of a bulk delete that left results behind: how many, and the first with why."""
    name, why = failed[0]
    return OSError(
        f"{store} did not delete {len(failed)} of {attempted} results in {adapter.describe()}, "
        f"first {name!r}: {why}"
    )
