"""The adapter for any Django Storage, through the public Storage API only.

Correct everywhere, not the fewest requests: there are no conditional writes,
so the backend reads before it writes, and listing asks for each object's
modified time separately (a storage without modified times lists names only:
cleanup then reads each result's ``date_done``). A storage's error that would
show a credential is raised as a redacted ``StorageError``.
"""

from __future__ import annotations

import builtins
import datetime
import ftplib
import heapq
from collections.abc import Callable, Iterable, Iterator

from django.core.files.base import ContentFile
from django.core.files.storage import Storage

from .adapters import (
    OVERWRITE,
    Content,
    ListedObject,
    ListedPage,
    PutMode,
    StorageAdapter,
    StoredObject,
    read_at_most,
)
from .folders import class_paths, folder_of
from .redact import StorageError

#: Exception class names third-party storages raise for a missing object.
_NOT_FOUND_NAMES = frozenset({"NoSuchKey", "NotFound", "ResourceNotFoundError", "NoSuchBlob"})

#: Reads of a result that was not found, yet exists when asked next: a
#: storage that keeps existing files is rewritten by delete-then-save, and a
#: read can fall in between.
READ_ATTEMPTS = 3

#: Storages that talk over one connection per instance, which two threads
#: must never use at once: read one result after another.
_ONE_CONNECTION = frozenset({"storages.backends.ftp.FTPStorage", "storages.backends.sftpstorage.SFTPStorage"})


class GenericAdapter(StorageAdapter):
    conditional_writes = False

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        if class_paths(storage) & _ONE_CONNECTION:
            self.parallel_reads = False
            self.max_concurrency = 1
        #: False once the storage has shown it cannot tell modified times.
        self.modified_times = True
        #: How to tell and create a folder the storage cannot create itself.
        self.folder = folder_of(storage)

    def read(self, name: str) -> StoredObject | None:
        with self.redacting(f"reading {name!r} from"):
            for attempt in range(1, READ_ATTEMPTS + 1):
                try:
                    with self.storage.open(name, "rb") as handle:
                        # the storage's file object may have buffered it all: we never copy more
                        data = read_at_most(handle, self.read_limit)
                    break
                except Exception as exc:
                    if self._is_missing(exc, name):
                        return None
                    if attempt == READ_ATTEMPTS or not _says_not_found(exc):
                        raise
                    # not found a moment ago, there now: a writer replaced it as we read
        if isinstance(data, str):  # a storage that ignores the binary mode
            data = data.encode("utf-8")
        return StoredObject(bytes(data), None)

    def _is_missing(self, exc: Exception, name: str) -> bool:
        if isinstance(exc, FileNotFoundError):
            return True
        if type(exc).__name__ in _NOT_FOUND_NAMES:
            return True
        # Unknown error type: one more request tells a missing object apart
        # from a real failure, on the error path only.
        try:
            return not self.storage.exists(name)
        except Exception:
            # the storage fails on everything: is it because its folder is missing?
            return self.folder is not None and self.folder.missing()

    def put(
        self, name: str, data: bytes, mode: PutMode = OVERWRITE, content: Content = Content()
    ) -> str | None:
        if mode != OVERWRITE:
            raise NotImplementedError("the generic adapter cannot write conditionally")
        with self.redacting(f"writing {name!r} to"):
            try:
                self._save(name, data)
            except Exception:
                if self.folder is None or not self.folder.create():
                    raise
                self._save(name, data)  # into the folder just created
        return None

    def _save(self, name: str, data: bytes) -> None:
        saved = self.storage.save(name, ContentFile(data, name=name))
        if saved != name:
            # The storage keeps existing files and saved a copy elsewhere:
            # replace the original, then drop the copy.
            self.storage.delete(name)
            try:
                again = self.storage.save(name, ContentFile(data, name=name))
            finally:
                self.storage.delete(saved)
            if again != name:
                self.storage.delete(again)
                raise OSError(f"storage would not write {name!r} in place")

    def delete(self, name: str) -> None:
        with self.redacting(f"deleting {name!r} from"):
            try:
                self.storage.delete(name)
            except Exception as exc:
                if not self._is_missing(exc, name):
                    raise

    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[ListedObject]:
        with self.redacting("listing"):
            yield from self._dated(name for name in self._names(prefix) if wanted(name))

    def list_page(self, prefix: str, limit: int, cursor: str | None = None) -> ListedPage:
        """The page's names from one listing, then the modified times of just those."""
        with self.redacting("listing"):
            names = heapq.nsmallest(
                limit + 1, (n for n in self._names(prefix) if cursor is None or n > cursor)
            )
            more = len(names) > limit
            entries = list(self._dated(names[:limit]))
        return ListedPage(entries, names[limit - 1] if more else None)

    def _names(self, prefix: str) -> builtins.list[str]:
        """The names of the files directly in the storage's root starting with prefix."""
        try:
            _folders, files = self.storage.listdir("")
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) or (self.folder is not None and self.folder.missing()):
                return []  # no folder yet: nothing stored
            raise
        return [name for name in files if name.startswith(prefix)]

    def _dated(self, names: Iterable[str]) -> Iterator[ListedObject]:
        """The names with their modified times; a name deleted since the listing is skipped."""
        for name in names:
            try:
                modified = self._modified_time(name)
            except Exception as exc:
                if self._is_missing(exc, name):
                    continue  # deleted since the listing
                raise
            yield ListedObject(name, modified)

    def _modified_time(self, name: str) -> datetime.datetime | None:
        if not self.modified_times:
            return None
        try:
            modified = self.storage.get_modified_time(name)
        except (NotImplementedError, AttributeError):  # Storage's default, or no such method
            self.modified_times = False
            return None
        if modified.tzinfo is None:
            modified = modified.astimezone(datetime.timezone.utc)  # naive means local time
        return modified

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, StorageError):
            return issubclass(exc.cause_type, (ConnectionError, TimeoutError))
        return super().is_retryable(exc)


def _says_not_found(exc: BaseException) -> bool:
    """True when the error, or the error it was raised from, is a not-found
    (FTPStorage raises its own error from ftplib's "550 No such file")."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, FileNotFoundError) or type(seen).__name__ in _NOT_FOUND_NAMES:
            return True
        if isinstance(seen, ftplib.error_perm) and str(seen).startswith("550"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
