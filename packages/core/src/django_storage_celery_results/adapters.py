"""The contract between the backend and one Django Storage.

An adapter offers a handful of capabilities over a single storage instance.
The backend asks what it can do and picks the cheapest correct algorithm.
Vocabulary borrowed from object stores: a put either overwrites, creates
(fails if present) or updates (fails unless the stored version matches).
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import heapq
import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, ClassVar, Literal, TypeVar

from django.core.files.storage import Storage

from .errors import MISCONFIGURED, NOT_APPENDING, TRANSIENT, Kind, StoreErrors
from .exceptions import (
    ImproperlyConfigured,
    InvalidResultId,
    ResultStoreMisconfigured,
    StoredObjectTooLarge,
    StoreRequestFailed,
    VersionMismatch,
)
from .redact import Redactor

OVERWRITE: Literal["overwrite"] = "overwrite"
CREATE: Literal["create"] = "create"

T = TypeVar("T")

#: (connect, read) seconds of each request where the adapter passes a timeout
#: (result_storage_timeout): a store that does not answer fails fast enough
#: for Celery's retries to act, and a large result still has time to stream
#: (the read timeout is per socket read, not for the whole body).
DEFAULT_TIMEOUT = (10.0, 60.0)

#: HTTP statuses of transient conditions worth another try: timeouts,
#: throttling, a server or gateway hiccup.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: The label of a payload no serializer named.
DEFAULT_CONTENT_TYPE = "application/octet-stream"


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
    #: Bytes stored, where the listing tells it (object stores, a folder); else None.
    size: int | None = None


@dataclass(frozen=True)
class ListedPage:
    """One page of a listing: at most the limit asked for, in name order
    where the store lists by name, and where the next page starts."""

    entries: list[ListedObject]
    #: Opaque: hand it back to list_page() for the next page; None at the end.
    cursor: str | None


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
    #: True when the store adds to the end of an object in one request and its
    #: answer says how many additions the object holds (Azure append blobs):
    #: chords then count a bucket of header tasks with one append per task,
    #: not a marker and a listing (chords.AppendCounter).
    appends: bool = False
    #: The largest object read() returns (the backend sets result_storage_max_size).
    read_limit: int | None = None
    #: (connect, read) seconds for each request, where the adapter passes a
    #: timeout itself (the storage has no setting for it: GCS); the backend
    #: sets result_storage_timeout.
    request_timeout: tuple[float, float] = DEFAULT_TIMEOUT

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        #: Hides the storage's credentials in every text about it (redact.py).
        self.redact = Redactor(storage)

    @abc.abstractmethod
    def read(self, name: str) -> StoredObject | None:
        """The object's bytes and version, or None when it does not exist.

        An object larger than read_limit bytes raises StoredObjectTooLarge,
        read no further than the store lets the adapter tell its size.
        """

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

    def list_page(self, prefix: str, limit: int, cursor: str | None = None) -> ListedPage:
        """At most limit objects whose names start with prefix, from where the
        cursor of the previous page says, in name order.

        Here for storages that list everything at once (a folder, any Django
        Storage): one pass over the listing keeps the limit smallest names
        after the cursor, which is the last name of the previous page."""
        listed = self.list(lambda name: cursor is None or name > cursor, prefix=prefix)
        return page_of(heapq.nsmallest(limit + 1, listed, key=lambda item: item.name), limit)

    def list_names(self, prefix: str = "") -> Iterator[str]:
        """The names of the objects directly under the storage root that start
        with prefix (chord bookkeeping: no times or sizes needed)."""
        return (item.name for item in self.list(prefix=prefix))

    def create_appendable(self, name: str) -> None:
        """Create name as an empty object that append() adds to (replacing what was there)."""
        raise NotImplementedError(f"{type(self).__name__} does not append")

    def append(self, name: str, data: bytes) -> int | None:
        """Add data at the end of name, atomically; how many additions it now
        holds, or None when name is no object that takes them (missing,
        another kind of object, sealed)."""
        raise NotImplementedError(f"{type(self).__name__} does not append")

    def read_appended(self, name: str) -> bytes | None:
        """What the additions to name hold, or None when it is no object that takes them."""
        raise NotImplementedError(f"{type(self).__name__} does not append")

    def seal(self, name: str) -> None:
        """Refuse every later append to name (not one that takes appends: nothing to do)."""
        raise NotImplementedError(f"{type(self).__name__} does not append")

    def remove_leftovers(self, older_than: datetime.datetime) -> int:
        """Delete debris of interrupted writes older than the given time.

        Called by cleanup(); adapters that never leave any keep this no-op.
        Returns how many objects were removed.
        """
        return 0

    def is_retryable(self, exc: BaseException) -> bool:
        """True for transient errors worth another try (throttling, timeouts)."""
        return isinstance(exc, (ConnectionError, TimeoutError))

    @contextlib.contextmanager
    def redacting(self, doing: str) -> Iterator[None]:
        """Re-raise the storage's errors, as a redacted StorageError where
        their text would show a credential ("reading 'x' from" + describe())."""
        try:
            yield
        except Exception as exc:
            error = self.redact.error(exc, f"{doing} {self.describe()}")
            if error is exc:
                raise
            raise error from None  # the original's text and chain would show it again

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
    the storage's location, conditional writes, content labels, listings by
    prefix, batched deletes, and one reading of the store's errors.

    A subclass names its store and its bucket setting, brings the storage's
    client, and speaks its API in five small calls: ``get``, ``write``,
    ``remove``, ``remove_batch`` and ``list_entries``. Its ``errors`` module says
    what each SDK error means; here a missing object reads as None, a lost
    condition as VersionMismatch, and a missing bucket or rejected
    credentials as ResultStoreMisconfigured, never as "no result yet".
    """

    conditional_writes = True
    content_labels = True
    prefix_listing = True

    #: The store's name in messages ("S3") and the scheme of describe() ("s3").
    store: ClassVar[str]
    scheme: ClassVar[str]
    #: "bucket" or "container"; the storage attribute and config key that names
    #: it, and the Django setting behind that key.
    bucket_word: ClassVar[str] = "bucket"
    bucket_argument: ClassVar[str] = "bucket_name"
    bucket_setting: ClassVar[str]
    #: Where credentials are set, for messages (setting names, never values).
    credential_settings: ClassVar[str]
    #: The permission that reads results, for messages.
    read_permission: ClassVar[str]
    #: The provider's SDK errors in our words.
    errors: ClassVar[StoreErrors]
    #: The most keys one bulk delete request takes.
    delete_batch: ClassVar[int] = 1

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        folder = posixpath.normpath(getattr(storage, "location", None) or ".").strip("/")
        #: The key prefix of the location: "" at the bucket root, else "folder/".
        self.prefix = "" if folder in ("", ".") else f"{folder}/"
        self.bucket_name = required_setting(
            getattr(storage, self.bucket_argument, None),
            self.store,
            self.bucket_word,
            self.bucket_argument,
            self.bucket_setting,
        )
        #: True once the bucket answered a read or a write: it exists.
        self.bucket_found = False

    # -- what a provider brings ----------------------------------------------

    @abc.abstractmethod
    def get(self, key: str) -> StoredObject:
        """One read of the object at key (raises the SDK's error when missing);
        StoredObjectTooLarge before reading more than read_limit bytes, where
        the store says the size first (refuse_oversized)."""

    @abc.abstractmethod
    def write(self, key: str, data: bytes, mode: PutMode, content: Content) -> str | None:
        """One write of the object at key with the mode's condition; its new version."""

    @abc.abstractmethod
    def remove(self, key: str) -> None:
        """One delete of the object at key."""

    @abc.abstractmethod
    def remove_batch(self, keys: list[str]) -> list[tuple[str, object]]:
        """Delete up to delete_batch keys in one request; (key, why) of each not deleted."""

    @abc.abstractmethod
    def list_entries(self, prefix: str) -> Iterable[ListedObject]:
        """The objects directly under prefix as the listing gives them: key
        (as name), modified time and size, page by page as they are consumed."""

    @abc.abstractmethod
    def list_entries_page(
        self, prefix: str, limit: int, cursor: str | None
    ) -> tuple[Iterable[ListedObject], str | None]:
        """One listing request for at most limit objects directly under prefix,
        from the store's continuation token (None: the first page); the
        objects and the token of the next page (None at the end)."""

    # A store whose objects take appends (appends = True) also brings these.

    def create_append(self, key: str) -> None:
        """One request creating an empty appendable object at key."""
        raise NotImplementedError

    def append_block(self, key: str, data: bytes) -> int:
        """One append to the object at key; how many appends it holds."""
        raise NotImplementedError

    def get_appended(self, key: str) -> bytes | None:
        """One read of the appendable object at key (None: another kind of object)."""
        raise NotImplementedError

    def seal_append(self, key: str) -> None:
        """One request refusing every later append to key."""
        raise NotImplementedError

    def list_key_names(self, prefix: str) -> Iterable[str]:
        """The keys directly under prefix, without what else the listing says;
        a provider whose SDK parses names alone faster overrides it."""
        return (entry.name for entry in self.list_entries(prefix))

    def list_keys(self, prefix: str) -> Iterable[tuple[str, datetime.datetime | None]]:
        """(key, modified) of the objects directly under prefix."""
        return ((entry.name, entry.modified) for entry in self.list_entries(prefix))

    def kind(self, exc: BaseException, missing_means_bucket: bool = False) -> Kind | None:
        """What an error means; missing_means_bucket for requests where a 404
        can only be the bucket (a write, a listing)."""
        if isinstance(exc, StoreRequestFailed) and exc.cause is not None:
            exc = exc.cause
        return self.errors.kind(exc, missing_means_bucket)

    def is_missing(self, key: str, exc: BaseException) -> bool:
        """True when a failed read means the object does not exist (PENDING)."""
        return self.kind(exc) is Kind.MISSING_OBJECT

    # -- the contract, once for every store ------------------------------------

    def key(self, name: str) -> str:
        """The key of a result name under the prefix; a name is always one key component."""
        if not name or "/" in name or name in (".", ".."):
            raise InvalidResultId(f"result name {name!r} is not a single key component")
        return self.prefix + name

    def read(self, name: str) -> StoredObject | None:
        key = self.key(name)
        try:
            try:
                stored = self.get(key)
            except self.errors.raised as exc:
                if self.is_missing(key, exc):
                    return None
                raise
        except self.errors.raised as exc:
            raise self.refusal(exc, f"reading {name!r} from", reading=True) from exc
        self.bucket_found = True
        return stored

    def put(
        self, name: str, data: bytes, mode: PutMode = OVERWRITE, content: Content = Content()
    ) -> str | None:
        key = self.key(name)
        try:
            version = self.write(key, data, mode, content)
        except self.errors.raised as exc:
            kind = self.kind(exc, missing_means_bucket=True)
            vanished = kind is Kind.MISSING_OBJECT and isinstance(mode, Update)
            if kind is Kind.CONFLICT or vanished:
                code = self.errors.code(exc)
                raise VersionMismatch(f"result {name!r} changed since it was read ({code})") from None
            raise self.refusal(exc, f"writing {name!r} to") from exc
        self.bucket_found = True
        return version

    def delete(self, name: str) -> None:
        try:
            self.remove(self.key(name))
        except self.errors.raised as exc:
            if self.kind(exc) is not Kind.MISSING_OBJECT:  # already gone is fine
                raise self.refusal(exc, f"deleting {name!r} from") from exc

    def delete_many(self, names: Iterable[str]) -> None:
        for batch in in_batches((self.key(name) for name in names), self.delete_batch):
            failed = self.remove_batch(batch)
            if failed:
                raise not_deleted(self.store, self, failed, len(batch))

    def create_appendable(self, name: str) -> None:
        try:
            self.create_append(self.key(name))
        except self.errors.raised as exc:
            raise self.refusal(exc, f"creating {name!r} in") from exc

    def append(self, name: str, data: bytes) -> int | None:
        try:
            return self.append_block(self.key(name), data)
        except self.errors.raised as exc:
            if self.kind(exc) in NOT_APPENDING:
                return None
            raise self.refusal(exc, f"appending to {name!r} in") from exc

    def read_appended(self, name: str) -> bytes | None:
        try:
            return self.get_appended(self.key(name))
        except self.errors.raised as exc:
            if self.kind(exc) in NOT_APPENDING:
                return None
            raise self.refusal(exc, f"reading {name!r} from", reading=True) from exc

    def seal(self, name: str) -> None:
        try:
            self.seal_append(self.key(name))
        except self.errors.raised as exc:
            if self.kind(exc) not in NOT_APPENDING:
                raise self.refusal(exc, f"sealing {name!r} in") from exc

    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[ListedObject]:
        """The wanted results among the keys the store lists under the prefix."""
        for entry in self.list_entries(self.prefix + prefix):
            name = entry.name[len(self.prefix) :]
            if name and wanted(name):
                yield ListedObject(name, entry.modified, entry.size)

    def list_page(self, prefix: str, limit: int, cursor: str | None = None) -> ListedPage:
        """One listing request: the store lists keys in name order and its own
        continuation token is the cursor."""
        try:
            listed, token = self.list_entries_page(self.prefix + prefix, limit, cursor or None)
            entries = [
                ListedObject(entry.name[len(self.prefix) :], entry.modified, entry.size)
                for entry in listed
                if entry.name.startswith(self.prefix) and len(entry.name) > len(self.prefix)
            ]
        except self.errors.raised as exc:
            raise self.refusal(exc, "listing") from exc
        return ListedPage(entries, token or None)

    def list_names(self, prefix: str = "") -> Iterator[str]:
        for key in self.list_key_names(self.prefix + prefix):
            name = key[len(self.prefix) :]
            if name:
                yield name

    def is_retryable(self, exc: BaseException) -> bool:
        return self.kind(exc) in TRANSIENT or super().is_retryable(exc)

    def describe(self) -> str:
        return f"{type(self.storage).__name__} at {self.url()}"

    def url(self) -> str:
        """Where results go, as a URL without credentials."""
        return f"{self.scheme}://{self.bucket_name}/{self.prefix}"

    @staticmethod
    def content_type(content: Content) -> str:
        return content.content_type or DEFAULT_CONTENT_TYPE

    # -- errors that no retry fixes --------------------------------------------

    def refusal(self, exc: BaseException, doing: str, reading: bool = False) -> BaseException:
        """The error to raise for a failed call: ResultStoreMisconfigured when
        the bucket is missing, the credentials are rejected or (on a read) may
        not read; else StoreRequestFailed saying what failed where ("reading
        'x' from" + describe()), also an instance of the store's own error."""
        kind = self.kind(exc, missing_means_bucket=not reading)
        if kind in MISCONFIGURED or (reading and kind is Kind.PERMISSION):
            return self.misconfigured(kind, exc)
        answer = self.redact(f"{type(exc).__name__}: {exc}")
        return StoreRequestFailed.wrapping(f"{doing} {self.describe()} failed: {answer}", exc)

    def misconfigured(self, kind: Kind | None, exc: BaseException) -> ResultStoreMisconfigured:
        """The error naming the bucket and its setting (never a credential)."""
        code, word, bucket = self.errors.code(exc), self.bucket_word, self.bucket_name
        where = f"CELERY_RESULT_STORAGE_CONFIG[{self.bucket_argument!r}] / {self.bucket_setting}"
        if kind is Kind.MISSING_BUCKET:
            text = (
                f"the {word} {bucket!r} does not exist ({code}): create it, or set {where} "
                f"to an existing {word}"
            )
        elif kind is Kind.CREDENTIALS:
            text = (
                f"{self.store} rejected the credentials for the {word} {bucket!r} ({code}): "
                f"check {self.credential_settings}, and {where}"
            )
        else:
            text = (
                f"these credentials may not read results in the {word} {bucket!r} ({code}): "
                f"grant {self.read_permission} on {self.url()}, or check {where}"
            )
        return ResultStoreMisconfigured.wrapping(f"{self.store} result storage: {text}.", exc)


def page_of(smallest: Sequence[ListedObject], limit: int) -> ListedPage:
    """A page from the limit + 1 smallest names after a cursor: the extra one
    only tells that there is a next page, which starts after the last shown."""
    entries = list(smallest[:limit])
    more = len(smallest) > limit and entries
    return ListedPage(entries, entries[-1].name if more else None)


def refuse_oversized(size: int | None, limit: int | None, version: str | None = None) -> None:
    """Raise StoredObjectTooLarge when a store's stated size is over the limit."""
    if limit is not None and size is not None and size > limit:
        raise StoredObjectTooLarge(size, version)


def read_at_most(handle: IO[bytes], limit: int | None) -> bytes:
    """Read a file object to its end, but never more than limit + 1 bytes:
    StoredObjectTooLarge when there are more than limit."""
    if limit is None:
        return handle.read()
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise StoredObjectTooLarge(None)
    return data


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
