"""The adapter for any Django Storage, through the public Storage API only.

Correct everywhere, not the fewest requests: there are no conditional writes,
so the backend reads before it writes, and listing asks for each object's
modified time separately.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator

from django.core.files.base import ContentFile

from .adapters import OVERWRITE, Content, ListedObject, PutMode, StorageAdapter, StoredObject

#: Exception class names third-party storages raise for a missing object.
_NOT_FOUND_NAMES = frozenset({"NoSuchKey", "NotFound", "ResourceNotFoundError", "NoSuchBlob"})


class GenericAdapter(StorageAdapter):
    conditional_writes = False

    def read(self, name: str) -> StoredObject | None:
        try:
            with self.storage.open(name, "rb") as handle:
                data = handle.read()
        except Exception as exc:
            if self._is_missing(exc, name):
                return None
            raise
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
            return False

    def put(
        self, name: str, data: bytes, mode: PutMode = OVERWRITE, content: Content = Content()
    ) -> str | None:
        if mode != OVERWRITE:
            raise NotImplementedError("the generic adapter cannot write conditionally")
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
        return None

    def delete(self, name: str) -> None:
        try:
            self.storage.delete(name)
        except Exception as exc:
            if not self._is_missing(exc, name):
                raise

    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[ListedObject]:
        _folders, files = self.storage.listdir("")
        for name in (name for name in files if name.startswith(prefix) and wanted(name)):
            try:
                modified = self.storage.get_modified_time(name)
            except Exception as exc:
                if self._is_missing(exc, name):
                    continue  # deleted since the listing
                raise
            if modified.tzinfo is None:
                modified = modified.astimezone(datetime.timezone.utc)  # naive means local time
            yield ListedObject(name, modified)
